// purview-bot on Azure Container Apps: the recipe of the README's "Deploy to Azure", as one deployment.
//
// NOT DEPLOYED FROM HERE. This file was written against the Microsoft.App, Microsoft.DBforPostgreSQL,
// Microsoft.KeyVault and Microsoft.Authorization API versions named below, and has not been compiled
// (`az bicep build`) or deployed by the project: its development machine reaches no Azure endpoint and
// no Bicep compiler. The image it runs is the one scripts/container-test builds and proves locally.
//
//   az deployment sub create --location westeurope --template-file deploy/main.bicep \
//     --parameters resourceGroupName=rg-purview-bot image=$ACR.azurecr.io/purview-bot:1 acrName=$ACR \
//       purviewAccounts=contoso-pv slackBotToken=$SLACK_BOT_TOKEN slackAppToken=$SLACK_APP_TOKEN
//
// What it makes: a resource group; a Log Analytics workspace and a Container Apps environment; the
// container app with a system-assigned managed identity (Socket Mode: no ingress; or HTTP mode with
// external ingress); the Slack tokens and the webhook secret as Container Apps secrets; optionally a
// PostgreSQL Flexible Server (password authentication) for more than one replica; and the identity's
// least-privilege Azure RBAC grants of the README's permissions table: Reader on each subscription,
// Key Vault Reader on RBAC vaults, secrets List by access policy on the others, AcrPull on the registry.
// Two grants are not ARM resources and stay manual (README): the Purview collection role (Data Source
// Administrator) and the optional Microsoft Graph application permissions.
targetScope = 'subscription'

@description('Resource group for the bot (created if missing).')
param resourceGroupName string = 'rg-purview-bot'

@description('Region of the resource group and everything in it.')
param location string = deployment().location

@description('Name of the container app (also the prefix of the other resources).')
@minLength(2)
@maxLength(24)
param name string = 'purview-bot'

@description('The image, e.g. myacr.azurecr.io/purview-bot:1 (built from the Containerfile).')
param image string

@description('Azure Container Registry holding the image, in this resource group ("" = a public image).')
param acrName string = ''

@description('PURVIEW_ACCOUNTS: comma-separated Purview account names or ARM ids; the first is the default.')
param purviewAccounts string

@description('Socket Mode (default): no ingress. false: HTTP mode, external ingress on port 3000.')
param socketMode bool = true

@secure()
@description('SLACK_BOT_TOKEN (xoxb-…).')
param slackBotToken string

@secure()
@description('SLACK_APP_TOKEN (xapp-…, scope connections:write): Socket Mode only.')
param slackAppToken string = ''

@secure()
@description('SLACK_SIGNING_SECRET: HTTP mode only.')
param slackSigningSecret string = ''

@secure()
@description('PURVIEW_BOT_WEBHOOK_SECRET: the Azure Monitor alert webhook ("" = no webhook route).')
param webhookSecret string = ''

@description('PURVIEW_BOT_ALERT_CHANNEL: channel id for the automatic posts ("" = none).')
param alertChannel string = ''

@description('Subscriptions the identity gets Reader on (the Purview account, sources, vaults).')
param readerSubscriptionIds array = [subscription().subscriptionId]

@description('Resource ids of RBAC Key Vaults holding scan secrets: Key Vault Reader (metadata only).')
param rbacKeyVaultIds array = []

@description('Resource ids of access-policy Key Vaults holding scan secrets: secrets List.')
param accessPolicyKeyVaultIds array = []

@description('A PostgreSQL Flexible Server for the state: needed for more than one replica.')
param postgres bool = false

@description('PostgreSQL administrator login (with postgres=true).')
param postgresLogin string = 'purviewbot'

@secure()
@description('PostgreSQL administrator password (with postgres=true).')
param postgresPassword string = ''

@description('Replicas always running (>= 1: Socket Mode and the watcher need a live process).')
@minValue(1)
param minReplicas int = 1

@description('Most replicas; above 1 only with postgres=true (one SQLite file per replica would post twice).')
@minValue(1)
param maxReplicas int = 1

resource rg 'Microsoft.Resources/resourceGroups@2022-09-01' = {
  name: resourceGroupName
  location: location
}

module app 'app.bicep' = {
  name: '${name}-app'
  scope: rg
  params: {
    location: location
    name: name
    image: image
    acrName: acrName
    purviewAccounts: purviewAccounts
    socketMode: socketMode
    slackBotToken: slackBotToken
    slackAppToken: slackAppToken
    slackSigningSecret: slackSigningSecret
    webhookSecret: webhookSecret
    alertChannel: alertChannel
    postgres: postgres
    postgresLogin: postgresLogin
    postgresPassword: postgresPassword
    minReplicas: minReplicas
    maxReplicas: maxReplicas
  }
}

// Reader on each subscription: resources, role assignments, deny assignments, role definitions, policy states
module reader 'reader.bicep' = [
  for subscriptionId in readerSubscriptionIds: {
    name: '${name}-reader-${uniqueString(subscriptionId)}'
    scope: subscription(subscriptionId)
    params: {
      principalId: app.outputs.principalId
    }
  }
]

// Key Vault: versions' dates and enabled flags, never a value
module rbacVaults 'vault-access.bicep' = [
  for vaultId in rbacKeyVaultIds: {
    name: '${name}-kv-${uniqueString(vaultId)}'
    scope: resourceGroup(split(vaultId, '/')[2], split(vaultId, '/')[4])
    params: {
      vaultName: last(split(vaultId, '/'))
      principalId: app.outputs.principalId
      rbac: true
    }
  }
]

module policyVaults 'vault-access.bicep' = [
  for vaultId in accessPolicyKeyVaultIds: {
    name: '${name}-kvp-${uniqueString(vaultId)}'
    scope: resourceGroup(split(vaultId, '/')[2], split(vaultId, '/')[4])
    params: {
      vaultName: last(split(vaultId, '/'))
      principalId: app.outputs.principalId
      rbac: false
    }
  }
]

output principalId string = app.outputs.principalId
output appName string = name
output resourceGroup string = resourceGroupName
output slackRequestUrl string = app.outputs.slackRequestUrl
output manualSteps string = 'Purview: give ${app.outputs.principalId} Data Source Administrator on the root collection (portal). Optional: Microsoft Graph app roles (README, Deploy to Azure).'
