"""Start the srdb_ros enhance node.

    ros2 launch srdb_ros enhance.launch.py eo_task:=both ir_task:=sr backend:=tensorrt \
        engine_path:=/data/srdb_student_{task}.engine namespace:=front \
        eo_image:=/camera/color/image_raw ir_image:=/thermal/image_raw

Parameters come from ``params_file``; ``cameras``, ``eo_task``, ``ir_task``, ``backend``, ``engine_path``,
``force_engine_update``, ``managed``, ``use_sim_time`` and the ``*_transport`` arguments override it only when
given on the command line. ``managed:=true`` (or ``managed: true`` in the parameter file) starts a lifecycle node
that waits for configure and activate (from a lifecycle manager or ``ros2 lifecycle set``); by default the node
configures and activates itself. ``eo_image``/``ir_image`` also remap the ``<image>/compressed`` topic of the
compressed transport. Other cameras (the ``cameras`` parameter) keep their topic names, under ``namespace``.
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription
from srdb_ros.ros.launch_args import NODE_NAME, PARAMETER_ARGUMENTS, argument_choices, managed_in, parameter_overrides

ARGUMENTS = [
    (
        "params_file",
        PathJoinSubstitution([FindPackageShare("srdb_ros"), "config", "enhance.yaml"]),
        "Parameter file (defaults: share/srdb_ros/config/enhance.yaml)",
    ),
    ("namespace", "", "Namespace of the node and its relative topics"),
    ("eo_image", "eo/image_raw", "EO input image topic"),
    ("ir_image", "ir/image_raw", "IR input image topic"),
    ("eo_camera_info", "eo/camera_info", "EO camera_info topic"),
    ("ir_camera_info", "ir/camera_info", "IR camera_info topic"),
    ("log_level", "info", "Logging level"),
]


def _node(context, *args, **kwargs):
    given = {name: LaunchConfiguration(name).perform(context) for name in PARAMETER_ARGUMENTS}
    overrides = parameter_overrides(given)
    images = {cam: LaunchConfiguration(f"{cam}_image").perform(context) for cam in ("eo", "ir")}
    params_file = LaunchConfiguration("params_file").perform(context)
    action = LifecycleNode if overrides.get("managed", managed_in(params_file)) else Node
    return [
        action(
            package="srdb_ros",
            executable="enhance_node",
            name=NODE_NAME,
            namespace=LaunchConfiguration("namespace"),
            output="screen",
            emulate_tty=True,
            parameters=[params_file, *([overrides] if overrides else [])],
            remappings=[
                ("eo/image_raw", images["eo"]),
                ("ir/image_raw", images["ir"]),
                ("eo/image_raw/compressed", images["eo"] + "/compressed"),
                ("ir/image_raw/compressed", images["ir"] + "/compressed"),
                ("eo/camera_info", LaunchConfiguration("eo_camera_info")),
                ("ir/camera_info", LaunchConfiguration("ir_camera_info")),
            ],
            arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
        )
    ]


def generate_launch_description() -> LaunchDescription:
    declared = [
        DeclareLaunchArgument(name, default_value=default, description=description)
        for name, default, description in ARGUMENTS
    ]
    declared += [  # an empty value leaves the parameter file's in force
        DeclareLaunchArgument(name, default_value="", description=description, choices=argument_choices(name))
        for name, (_, description) in PARAMETER_ARGUMENTS.items()
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_node)])
