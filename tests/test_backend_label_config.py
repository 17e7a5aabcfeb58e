"""What the backend reads from a project's labeling config: the image's data key and the
BrushLabels control a label's mask goes to; configs it cannot serve are 422s with a reason."""

import pytest

from backend.errors import RequestError
from backend.label_config import parse_label_config, shipped_label_config

TWO_IMAGES = """<View>
  <Image name="left" value="$photo"/>
  <Image name="right" value="$other"/>
  <BrushLabels name="left_mask" toName="left"><Label value="Car"/><Label value="Tree"/></BrushLabels>
  <BrushLabels name="right_mask" toName="right"><Label value="Car"/></BrushLabels>
  <KeyPointLabels name="kp" toName="left" smart="true"><Label value="Car"/><Label value="Tree"/></KeyPointLabels>
</View>"""


def test_the_shipped_config_puts_object_masks_on_the_image():
    config = parse_label_config(shipped_label_config())
    assert config.image_key() == "image"
    target = config.brush_for("image", "Object")
    assert (target.from_name, target.to_name, target.label) == ("mask", "image", "Object")
    assert config.brush_labels() == {"Object"}


def test_each_image_has_its_own_data_key_and_brush_control():
    config = parse_label_config(TWO_IMAGES)
    assert config.image_key("right") == "other"
    assert config.image_key("unknown") == "photo"  # an unknown image name falls back to the first
    assert config.brush_for("right", "Car").from_name == "right_mask"
    assert config.brush_for("left", "Tree").from_name == "left_mask"
    assert config.brush_for(None, "Car").to_name == "left"


@pytest.mark.parametrize("label, to_name, message", [
    ("Tree", "right", r"unknown label 'Tree'.*\['Car'\] for image 'right'"),
    ("Bus", None, r"unknown label 'Bus'"),
])
def test_a_label_without_a_brush_is_a_422_naming_the_known_ones(label, to_name, message):
    with pytest.raises(RequestError, match=message) as err:
        parse_label_config(TWO_IMAGES).brush_for(to_name, label)
    assert err.value.status == 422


@pytest.mark.parametrize("xml, message", [
    ("", "empty"),
    ("<View><Image", "cannot be parsed"),
])
def test_unreadable_configs_are_422s(xml, message):
    with pytest.raises(RequestError, match=message):
        parse_label_config(xml)


def test_configs_without_an_image_or_a_brush_say_what_is_missing():
    no_brush = parse_label_config('<View><Image name="i" value="$image"/></View>')
    with pytest.raises(RequestError, match="no <BrushLabels>"):
        no_brush.brush_for("i", "Object")
    no_image = parse_label_config('<View><Text name="t" value="$text"/></View>')
    with pytest.raises(RequestError, match="no <Image>"):
        no_image.image_key()
