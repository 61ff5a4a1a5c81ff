"""The chapters' one namespace, as d2l's: ``from course_utils import course``.

It defines nothing. Each name lives in the module whose job it is (the README maps
module -> job -> chapter); a chapter reaches them all through ``course.<name>``.
"""
from .presets import PRESETS, is_smoke_run  # noqa: F401
from .run_configs import (axis_encoder_config, axis_gan_config, axis_run_dir, current_preset,  # noqa: F401
                          encoder_config, gan_config, mini_wiki_thresholds_apply)
from .rebuild import (CLASSIFIER_SEED, axis_faces, ensure_classifier, ensure_encoder, ensure_faces,  # noqa: F401
                      ensure_generator, train_age_classifier)
from .ground_truth import (REPORTED_FACES, GroundTruthSet, aging_targets, ground_truth_at_other_group,  # noqa: F401
                           group_means, reported_faces, tuning_faces)
from .summaries import format_figures, read_summary, record_summary  # noqa: F401
