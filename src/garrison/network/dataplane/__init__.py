"""The nftables dataplane: compile evaluated policies to one ``inet garrison`` table and keep it applied.

See docs/dataplane.md for the layout. Modules: :mod:`.ir` (input), :mod:`.adapter` (from the policy
engine), :mod:`.compile`, :mod:`.apply`, :mod:`.agent`, :mod:`.quarantine`, :mod:`.flowlog`,
:mod:`.dns`, :mod:`.harness` and :mod:`.probe` (network-namespace test cluster), :mod:`.nft`
(libnftables binding), :mod:`.netns`.
"""
