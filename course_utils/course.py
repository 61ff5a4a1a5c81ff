"""The chapters' one namespace, as d2l's: ``from course_utils import course``, then ``course.<name>``.

It defines nothing. Each name lives in the module whose job it is (the README maps
module -> job -> chapter), and ``inspect.getsource(course.<name>)`` shows that module's code.
"""
# ruff: noqa: F401
from . import paths, pretrained
from .age_axis import (CLEANED_EDIT, RAW_EDIT, AgeJudge, curve_fit, encode_and_refine, ground_truth_along_axis,
                       judge_ages, judge_report, judged_grid, mean_faces, render_people, response_curve,
                       train_age_judge, years_off_interval)
from .age_change import EditSettings, clean_change, clean_change_with_average, guided_filter, population_change
from .aging import REFINE_STEPS, LatentCache, age_face, age_face_in_years, encode, predict_group, refine_latent, render
from .checkpoints import load_checkpoint
from .classifier import AgeClassifier, LogisticBaseline, evaluate_classifier, predict_groups, train_classifier
from .conditioning_check import (conditioning_report, conditioning_table, label_difference_map,
                                 label_interpolation_strip, render_shared_noise, shared_noise)
from .conditions import AGE_RANGE, SIX_GROUPS, THERMOMETER_THRESHOLDS, condition_for_ages, scheme_condition
from .data import (DEFAULT_AGE_GROUPS, assign_age_groups, balance_classes, download_dataset, filter_faces,
                   latest_face_settings, load_face_cache, read_imdb_wiki_metadata, render_ground_truth)
from .device import pick_device
from .figures import show_image_rows
from .ground_truth import (REPORTED_FACES, GroundTruthSet, aging_targets, ground_truth_at_other_group,
                           group_means, reported_faces, tuning_faces)
from .metrics import high_frequency_energy, mean_pairwise_distance, psnr, rms, speckle_ratio, ssim
from .models import Discriminator, Encoder, Generator, JoinNoiseAndCondition, shape_trace
from .example_photos import example_photo
from .photo import NoFaceFound, find_face, load_photo
from .photo_aging import age_photo, edit_photo
from .presets import PRESETS, is_smoke_run
from .rebuild import (CLASSIFIER_SEED, axis_faces, axis_models, chapter_models, ensure_classifier, ensure_encoder,
                      ensure_faces, ensure_generator, train_age_classifier)
from .run_configs import (axis_encoder_config, axis_gan_config, axis_run_dir, current_preset, encoder_config,
                          gan_config, mini_wiki_thresholds_apply)
from .summaries import format_figures, read_summary, record_summary
from .tensors import one_hot, soft_condition, to_model_range, to_uint8
from .train_encoder import (EncoderConfig, encoder_step, generated_pairs, latent_r2, load_encoder, train_encoder,
                            unexplained_variance)
from .train_gan import (GanConfig, build_gan, fixed_sample_inputs, gan_step, load_generator, moving_average,
                        train_gan)
from .training import seed_everything
from .widgets import AgeSliderApp, YearsSliderApp, years_to_position
