"""What an audio file's container declares, read from its header without decoding it.

A WAV `data` chunk (or an RF64 `ds64`) and `fact` chunk, an AIFF `COMM` chunk and a FLAC
STREAMINFO block each say how long the audio is. The importer compares that with what decodes, so
a file that was cut short (or whose header claims more than it holds) is rejected as truncated
instead of imported as a shorter clip. The header also names the codec, so a WAV holding, say,
Ogg Vorbis is reported as an unsupported codec rather than as a corrupt file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

MAX_CHUNKS = 64  # a header is a handful of chunks; a longer walk is a damaged file

# WAV format tags (and WAVE_FORMAT_EXTENSIBLE sub-formats) libsndfile decodes.
WAV_DECODABLE = {0x0001: "PCM", 0x0002: "MS ADPCM", 0x0003: "IEEE float", 0x0006: "A-law", 0x0007: "mu-law",
                 0x0011: "IMA ADPCM", 0x0031: "GSM 6.10", 0x0040: "G.721 ADPCM"}
WAV_OTHER_CODECS = {0x0050: "MPEG", 0x0055: "MPEG layer 3", 0x00FF: "AAC", 0x0161: "WMA", 0x0162: "WMA Pro",
                    0x2000: "AC-3", 0x2001: "DTS", 0x674F: "Ogg Vorbis", 0x6750: "Ogg Vorbis",
                    0x6751: "Ogg Vorbis", 0x676F: "Ogg Vorbis", 0x6770: "Ogg Vorbis", 0x6771: "Ogg Vorbis",
                    0x704F: "Opus", 0xF1AC: "FLAC"}
WAV_PCM_LIKE = {0x0001, 0x0003, 0x0006, 0x0007}  # one block_align of bytes per frame
WAV_EXTENSIBLE = 0xFFFE
UNKNOWN_SIZES = {0, 0xFFFFFFFF}  # what streaming writers put where the length is not known yet
AIFC_DECODABLE = {b"NONE", b"sowt", b"twos", b"raw ", b"in24", b"42ni", b"in32", b"23ni", b"fl32", b"FL32",
                  b"fl64", b"FL64", b"ulaw", b"ULAW", b"alaw", b"ALAW", b"ima4", b"GSM ", b"DWVW"}


@dataclass(frozen=True)
class Declared:
    """What a header says: how many frames the audio has (None where it does not say) and, where
    the container holds a codec libsndfile cannot decode, that codec's name."""

    container: str
    frames: int | None = None
    unsupported_codec: str | None = None


def read_declared(handle: BinaryIO) -> Declared | None:
    """The declaration of a WAV, RF64, AIFF/AIFF-C or FLAC file open for reading (None for other
    containers, or where the header is too damaged to say). Reads a few hundred bytes at most
    plus one seek per chunk; leaves the position anywhere."""
    handle.seek(0)
    head = handle.read(12)
    try:
        if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
            return _wav(handle, rf64=head[:4] == b"RF64")
        if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
            return _aiff(handle, compressed=head[8:12] == b"AIFC")
        if head[:4] == b"fLaC":
            return _flac(handle)
    except struct.error:
        return None
    return None


def _chunks(handle: BinaryIO, start: int, byte_order: str):
    """(id, size, body offset) of each chunk from `start`, bodies padded to an even length."""
    offset = start
    for _ in range(MAX_CHUNKS):
        handle.seek(offset)
        header = handle.read(8)
        if len(header) < 8:
            return
        chunk_id, size = header[:4], struct.unpack(byte_order + "I", header[4:])[0]
        yield chunk_id, size, offset + 8
        offset += 8 + size + (size & 1)


def _wav(handle: BinaryIO, rf64: bool) -> Declared:
    tag = block_align = None
    data_size_64 = fact_frames = None
    for chunk_id, size, body in _chunks(handle, 12, "<"):
        handle.seek(body)
        if chunk_id == b"ds64":
            _riff_size, data_size_64, _samples = struct.unpack("<QQQ", handle.read(24))
        elif chunk_id == b"fmt ":
            fmt = handle.read(min(size, 40))
            tag, _channels, _rate, _byte_rate, block_align = struct.unpack("<HHIIH", fmt[:14])
            if tag == WAV_EXTENSIBLE and len(fmt) >= 26:
                tag = struct.unpack("<H", fmt[24:26])[0]  # the sub-format GUID starts with the tag
        elif chunk_id == b"fact" and size >= 4:
            fact_frames = struct.unpack("<I", handle.read(4))[0]
        elif chunk_id == b"data":
            if rf64 and size == 0xFFFFFFFF and data_size_64 is not None:
                size = data_size_64
            elif size in UNKNOWN_SIZES:
                size = None
            frames = fact_frames if tag not in WAV_PCM_LIKE else (
                size // block_align if size is not None and block_align else None)
            return Declared("WAV", frames, _wav_codec(tag))
    return Declared("WAV", None, _wav_codec(tag))


def _wav_codec(tag: int | None) -> str | None:
    if tag is None or tag in WAV_DECODABLE:
        return None
    return f"{WAV_OTHER_CODECS.get(tag, 'format')} (WAV format tag 0x{tag:04X})"


def _aiff(handle: BinaryIO, compressed: bool) -> Declared:
    for chunk_id, size, body in _chunks(handle, 12, ">"):
        if chunk_id == b"COMM":
            handle.seek(body)
            comm = handle.read(min(size, 22))
            frames = struct.unpack(">I", comm[2:6])[0]
            compression = comm[18:22] if compressed else b"NONE"
            codec = None if compression in AIFC_DECODABLE else (
                f"AIFF-C compression {compression.decode('latin-1')!r}")
            return Declared("AIFF", frames, codec)
    return Declared("AIFF")


def _flac(handle: BinaryIO) -> Declared:
    """STREAMINFO is the first metadata block: 20 bits rate, 3 channels, 5 bits depth, 36 bits samples."""
    handle.seek(4)
    block = handle.read(4 + 18)
    if len(block) < 22 or block[0] & 0x7F != 0 or block[1:4] != (34).to_bytes(3, "big"):
        return Declared("FLAC")  # no STREAMINFO block (of its fixed 34 bytes) first: the header says nothing
    packed = int.from_bytes(block[4 + 10: 4 + 18], "big")
    frames = packed & ((1 << 36) - 1)
    return Declared("FLAC", frames or None)  # 0: the encoder did not know the length
