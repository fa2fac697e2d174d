// The bot's identity on one Key Vault holding scan secrets (README permissions table, third row): the
// versions' dates and enabled flags, never a value. RBAC vaults: Key Vault Reader (secrets/readMetadata
// only); access-policy vaults: secrets List. NOT DEPLOYED FROM HERE: see main.bicep.
param vaultName string
param principalId string
param rbac bool

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource keyVaultReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (rbac) {
  name: guid(vault.id, principalId, 'Key Vault Reader')
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '21090545-7ca7-4776-b22c-e363652d74d2') // Key Vault Reader
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// `add` merges this entry into the vault's access policies (it does not replace the others)
resource listSecrets 'Microsoft.KeyVault/vaults/accessPolicies@2023-07-01' = if (!rbac) {
  parent: vault
  name: 'add'
  properties: {
    accessPolicies: [
      {
        tenantId: subscription().tenantId
        objectId: principalId
        permissions: {
          secrets: ['list']
        }
      }
    ]
  }
}
