"""Software bills of materials: catalogers (one module per ecosystem) and SBOM formats."""
