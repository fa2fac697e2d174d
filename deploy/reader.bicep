// Reader on one subscription for the bot's identity (README permissions table, first row): resources and
// their settings, role and deny assignments, role definitions, policy states; never a data-plane read.
// NOT DEPLOYED FROM HERE: see main.bicep.
targetScope = 'subscription'

param principalId string

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, 'Reader')
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'acdd72a7-3385-48ef-bd42-f606fba81ae7') // Reader
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
