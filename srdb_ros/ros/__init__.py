"""The ROS 2 layer: the enhance node, its parameters, message conversions, diagnostics and process helpers."""
