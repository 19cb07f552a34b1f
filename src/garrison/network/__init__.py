"""Zero-trust network policy: selectors, policy model and loaders, inventory, evaluator, matrix, export.

Everything here is pure (no kernel access); ``network.dataplane`` compiles the policy IR of
:mod:`garrison.network.ir` to nftables.
"""
