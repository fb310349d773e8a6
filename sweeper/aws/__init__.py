"""Everything that speaks AWS's protocol on the orchestrator's side (aiobotocore)."""
