import pytest

from core.base.units import ByteSize, Duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500us", 0.0005),
        ("250ms", 0.25),
        ("30s", 30),
        ("5m", 300),
        ("8h", 28800),
        ("10d", 864000),
        (" 1.5s ", 1.5),
    ],
)
def test_duration_units(text: str, seconds: float) -> None:
    assert Duration(text).seconds == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5", "5 seconds", "-1s", "1w", "", "ms"])
def test_duration_needs_a_known_unit(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        Duration(text)


@pytest.mark.parametrize(("text", "size"), [("1B", 1), ("64KiB", 65536), ("8GiB", 8 << 30)])
def test_sizes(text: str, size: int) -> None:
    assert ByteSize(text).bytes == size


@pytest.mark.parametrize("text", ["8", "8GB", "1.5GiB", "GiB"])
def test_size_needs_a_binary_unit(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        ByteSize(text)
