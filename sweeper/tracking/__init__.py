"""Where trials are recorded besides the study: SageMaker Experiments runs
(:mod:`.experiments`) and MLflow runs (:mod:`.mlflow`), each a request hook and an
observer of the scheduler, completing runs on a task of its own (:mod:`.setup` makes
them); a finished trial's metric series is read once for both (:mod:`.series`)."""
