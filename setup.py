"""Installation of fusion_tf.  ``pip install -e .[dev]`` for development (adds pytest)."""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="fusion_tf",
    version="0.1.0",
    description=(
        "Faithful TensorFlow 2 / Keras 3 re-creations of MFF-GAN, MFIF-GAN, GIPC-GAN and GACN "
        "multi-focus image fusion: original weights, training recipes, SavedModel export, metrics."
    ),
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["fusion_tf", "fusion_tf.*"]),
    include_package_data=True,
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.12,<4",
        "numpy>=1.26,<3",
        "h5py>=3.11,<3.15",
        "scipy>=1.11,<2",
        "opencv-python-headless>=4.8,<6",
        "matplotlib>=3.8,<4",
        "pillow>=10,<14",
        "tqdm>=4.66,<5",
    ],
    extras_require={
        # the test suite includes the ONNX parity tests, so dev pulls the onnx extra in
        "dev": ["pytest>=8,<10", "onnxruntime>=1.17,<2", "tf2onnx>=1.17,<2"],
        "tensorboard": ["tensorboard>=2.20,<3"],
        # --backend onnxruntime (tf2onnx 1.17 works with TF 2.21's protobuf; tested with onnxruntime 1.31)
        "onnx": ["onnxruntime>=1.17,<2", "tf2onnx>=1.17,<2"],
        # fuse --batch --engine beam / python -m fusion_tf.beam (Apache Beam RunInference, docs/bulk.md);
        # apache-beam 2.77 pins protobuf<7 and pillow<13 (pip resolves protobuf 6.33, pillow 12.3 for TF 2.21)
        "beam": ["apache-beam>=2.77,<3"],
    },
    entry_points={"console_scripts": ["fusion-tf=fusion_tf.cli:main"]},
)
