"""The process's one botocore data loader: each AWS model file (SageMaker's is about
3 MB of JSON) is read and parsed once, by whoever asks first (the space file's checks or
a client), instead of once per botocore session."""

from __future__ import annotations

import functools

import botocore.loaders
import botocore.session


@functools.cache
def loader() -> botocore.loaders.Loader:
    """The shared loader, searching what a botocore session would (``AWS_DATA_PATH``
    included)."""
    data_path = botocore.session.Session().get_config_variable("data_path")
    return botocore.loaders.create_loader(data_path)


def sagemaker_enum(shape: str) -> frozenset[str]:
    """The values of one of SageMaker's enum shapes (e.g. ``TrainingInstanceType``) in
    the installed botocore's model."""
    model = loader().load_service_model("sagemaker", "service-2", api_version=None)
    return frozenset(model["shapes"][shape]["enum"])
