"""Spend: what each job cost, budgets per API key that hold exactly across the fleet, and usage.

- ``prices``: a deployment's price (config, else the bundled table) and output limit.
- ``cost``: the cost of a provider's ``usage`` and the upper bound reserved at admission.
- ``budget``: a key's budget in Redis (reserved in ``create.lua``, given back in
  ``job_ended.lua``, spent in ``charge.lua``).
- ``usage``: per key, per UTC day, per provider and model: tokens, requests and cost.

Money is integer micro-USD everywhere it is counted; USD appears only at the edges.
"""
