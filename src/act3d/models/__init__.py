"""The networks: tokenizer, transformer blocks, frozen teachers, the stage I dVAE and the stage II student."""

from act3d.models.teachers import BertBlock, FrozenTeacher, build_teacher, convert_dinov2_onnx, teacher_names

__all__ = [
    "BertBlock",
    "FrozenTeacher",
    "build_teacher",
    "convert_dinov2_onnx",
    "teacher_names",
]
