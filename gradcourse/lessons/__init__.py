"""The lessons' experiments, one module per idea, each built on :mod:`gradcourse.core` only.

``gradcourse.<lesson>`` (for example ``gc.clipping``) is ``gradcourse.lessons.<lesson>``, imported on first use.
"""
