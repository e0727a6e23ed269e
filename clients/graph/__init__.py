"""Microsoft Graph sync: pull a tenant into the SPEC tables, apply a fulfillment plan."""
