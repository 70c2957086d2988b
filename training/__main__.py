import sys

from training import runtime_env
from training.cli import main

runtime_env.drop_tensorflow_noise()  # TensorFlow's ERROR lines that are no error (runtime_env.RUN_NOISE)
sys.exit(main())
