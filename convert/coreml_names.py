"""Short names for the values of a CoreML ML program, so the program file stops outweighing the model.

Every value of an ML program carries a name twice (its output and the op's ``name`` attribute) and
once more per use. The converter derives them from the traced module's paths
(``scored_model_embeddings_browse_tables_1_weight_quantized``): in the demo DIPN's int8 package the
names were about 45 kB of a 0.18 MB ``model.mlmodel`` beside 0.48 MB of int8 weights. Names are
identifiers only; the program computes the same with ``v1f`` as with the long one. The model's
inputs and outputs keep their names (they are the signature); every other value, op and block input
is renamed consistently, the ``name`` attributes included, so the program stays well formed (it
loads back through coremltools' own reader, ``convert.coreml_export.inspect_package``).
"""

from __future__ import annotations

from typing import Any


def shorten_names(spec: Any) -> int:
    """Rename every value of ``spec`` (a ``Model_pb2.Model`` holding an ML program) but the model's
    inputs and outputs, in place; return how many names were replaced."""
    keep = {d.name for d in spec.description.input} | {d.name for d in spec.description.output}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if name in keep:
            return name
        if name not in names:
            names[name] = f"v{len(names):x}"
        return names[name]

    def block(b: Any) -> None:
        for value in b.inputs:
            value.name = short(value.name)
        for op in b.operations:
            for value in op.outputs:
                value.name = short(value.name)
            for argument in op.inputs.values():
                for binding in argument.arguments:
                    if binding.WhichOneof("binding") == "name":
                        binding.name = short(binding.name)
            if "name" in op.attributes:
                strings = op.attributes["name"].immediateValue.tensor.strings.values
                for i, name in enumerate(strings):
                    strings[i] = short(name)
            for inner in op.blocks:
                block(inner)
        for i, name in enumerate(b.outputs):
            b.outputs[i] = short(name)

    for function in spec.mlProgram.functions.values():
        for value in function.inputs:
            value.name = short(value.name)
        for specialization in function.block_specializations.values():
            block(specialization)
    return len(names)
