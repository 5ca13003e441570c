from glob import glob

from setuptools import find_packages, setup

PACKAGE = "srdb_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.json")),
        (f"share/{PACKAGE}/config/splits", glob("config/splits/*.txt")),
        (f"share/{PACKAGE}/models", [f for f in glob("models/*") if not f.endswith(".tmp")]),
        (f"share/{PACKAGE}/samples/eo", glob("samples/eo/*")),
        (f"share/{PACKAGE}/samples/ir", glob("samples/ir/*")),
        (f"share/{PACKAGE}/samples", glob("samples/*.md")),
    ],
    python_requires=">=3.10",
    zip_safe=True,
    maintainer="srdb_ros maintainers",
    maintainer_email="srdb-ros@example.com",
    description="Integrated deblurring and x4 super-resolution for EO/IR cameras as a ROS 2 node",
    license="Apache-2.0",
    # colcon test runs pytest when it is declared here; the rest are the suite's own needs (package.xml test_depend)
    extras_require={"test": ["pytest", "jsonschema", "catkin_pkg", "ruff", "tensorboard"]},
    entry_points={
        "console_scripts": [
            "srdb = srdb_ros.cli:main",
            "enhance_node = srdb_ros.ros.entry:main",
        ],
    },
)
