"""Raw event logs in, samples out: readers, the behaviour simulator and the sample builder."""
