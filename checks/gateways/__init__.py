"""Read-only gateways to Purview's scanning API, ARM, Key Vault and Microsoft Graph.

`api.py` holds the protocols the rest of `checks` depends on; the modules beside it implement them on
azure-core pipelines and the Azure SDK clients.
"""
