"""ARM64 phone emulation: build.py builds it, bench.py measures, guest.py runs on the phone, report.py renders."""
