"""Header stamps as integer nanoseconds (rclpy and rosbags messages alike, or straight from CDR bytes)."""

from __future__ import annotations

import struct


def header_ns(header) -> int:
    """A std_msgs/Header's stamp in nanoseconds."""
    return header.stamp.sec * 10**9 + header.stamp.nanosec


def ns_to_stamp(stamp_ns: int) -> tuple[int, int]:
    """(sec, nanosec) of a stamp in nanoseconds."""
    return stamp_ns // 10**9, stamp_ns % 10**9


def cdr_stamp_ns(raw: bytes) -> int:
    """The header stamp of a serialized message that starts with a std_msgs/Header (Image, CameraInfo), read
    from the CDR bytes without deserializing the rest (a 58 MB image costs nothing)."""
    little = raw[1] & 1  # encapsulation: 0x0000/0x0002 big-endian, 0x0001/0x0003 little-endian
    sec, nanosec = struct.unpack_from("<iI" if little else ">iI", raw, 4)
    return sec * 10**9 + nanosec
