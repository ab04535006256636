"""siamese_studio.ui.inputs: the image inputs of Compare."""


def test_the_drawing_canvas_takes_the_shape_of_the_models_inputs():
    """A wide model (signatures, 40 x 80) gets a wide canvas, strokes as thick for its height;
    square models keep the 280-px square."""
    from siamese_studio.ui.inputs import canvas_shape
    assert canvas_shape(1.0) == (280, 280, 22)
    h, w, stroke = canvas_shape(2.0)
    assert (h, w) == (200, 400) and stroke == round(22 * 200 / 280)
    assert canvas_shape(4.0)[:2] == (100, 400) and canvas_shape(9.0)[:2] == (100, 400)
