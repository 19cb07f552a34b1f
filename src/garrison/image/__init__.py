"""Reading container images: docker-archive, OCI layout and archive, rootfs directories and
registries over the OCI distribution API, streamed layer by layer and extracted safely."""
