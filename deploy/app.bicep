// The container app and what it runs in (resource-group scope; deployed by main.bicep). NOT DEPLOYED FROM
// HERE: see main.bicep. Setting names are the image's (bot/settings.py); none has a value in the image.
param location string
param name string
param image string
param acrName string
param purviewAccounts string
param socketMode bool
@secure()
param slackBotToken string
@secure()
param slackAppToken string
@secure()
param slackSigningSecret string
@secure()
param webhookSecret string
param alertChannel string
param postgres bool
param postgresLogin string
@secure()
param postgresPassword string
param minReplicas int
param maxReplicas int

var port = 3000
// the Azure Monitor webhook (POST /alerts/azure-monitor) needs an inbound route even in Socket Mode
var ingress = !socketMode || !empty(webhookSecret)
// one SQLite file per replica would claim and post every failure once per replica: one replica without
// PostgreSQL (the lease and the claims live in the database)
var replicasMax = postgres ? max(maxReplicas, minReplicas) : 1
var replicasMin = postgres ? minReplicas : 1
var pgName = '${name}-pg-${uniqueString(resourceGroup().id)}'
var databaseName = 'purviewbot'

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${name}-logs'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource env 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: '${name}-env'
  location: location
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logs.properties.customerId
        sharedKey: logs.listKeys().primarySharedKey
      }
    }
  }
}

// --- the image: pulled with a user-assigned identity that holds AcrPull before the app exists (the app's
// system-assigned identity is created with the app, too late for its first revision's pull) ---------------
resource acr 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = if (!empty(acrName)) {
  name: empty(acrName) ? 'none' : acrName
}

resource pullIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = if (!empty(acrName)) {
  name: '${name}-acrpull'
  location: location
}

var acrPullRole = '7f951dda-4ed3-4680-a7ca-43fe172d538d' // AcrPull

resource acrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(acrName)) {
  name: guid(resourceGroup().id, name, 'AcrPull')
  scope: acr
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPullRole)
    principalId: pullIdentity!.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// --- state for more than one replica: PostgreSQL Flexible Server, password authentication -------------
// (the bot connects with the URL's password; Entra authentication would need it to present a token as the
// password and renew it, which it does not do)
resource pg 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = if (postgres) {
  name: pgName
  location: location
  sku: {
    name: 'Standard_B1ms'
    tier: 'Burstable'
  }
  properties: {
    version: '16'
    administratorLogin: postgresLogin
    administratorLoginPassword: postgresPassword
    authConfig: {
      passwordAuth: 'Enabled'
      activeDirectoryAuth: 'Disabled'
    }
    storage: { storageSizeGB: 32 }
    backup: {
      backupRetentionDays: 7
      geoRedundantBackup: 'Disabled'
    }
    highAvailability: { mode: 'Disabled' }
    network: { publicNetworkAccess: 'Enabled' }
  }
}

// Container Apps without a virtual network reach the server over its public endpoint: this rule admits
// connections from Azure services (TLS and the password still required). With a VNet-integrated
// environment, use private access instead and drop the rule.
resource pgAzure 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = if (postgres) {
  parent: pg
  name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

resource pgDatabase 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = if (postgres) {
  parent: pg
  name: databaseName
}

// --- the app -------------------------------------------------------------------------------------------
var pgHost = postgres ? pg!.properties.fullyQualifiedDomainName : ''
var databaseUrl = 'postgresql+asyncpg://${postgresLogin}:${uriComponent(postgresPassword)}@${pgHost}:5432/${databaseName}?ssl=require'

// Container Apps secrets: the environment below refers to them by name (`secretRef`)
var botSecrets = [{ name: 'slack-bot-token', value: slackBotToken }]
var socketSecrets = [{ name: 'slack-app-token', value: slackAppToken }]
var httpSecrets = [{ name: 'slack-signing-secret', value: slackSigningSecret }]
var webhookSecrets = empty(webhookSecret) ? [] : [{ name: 'webhook-secret', value: webhookSecret }]
var databaseSecrets = postgres ? [{ name: 'database-url', value: databaseUrl }] : []
var secrets = concat(botSecrets, socketMode ? socketSecrets : httpSecrets, webhookSecrets, databaseSecrets)

// the container's environment: the setting names of bot/settings.py (tests/test_deploy_recipe.py)
var baseSettings = [
  { name: 'PURVIEW_ACCOUNTS', value: purviewAccounts }
  // DefaultAzureCredential pinned to the managed identity (no AZURE_CLIENT_ID: the system-assigned one)
  { name: 'AZURE_TOKEN_CREDENTIALS', value: 'ManagedIdentityCredential' }
  { name: 'PORT', value: string(port) }
  { name: 'SLACK_BOT_TOKEN', secretRef: 'slack-bot-token' }
]
var socketSettings = [{ name: 'SLACK_APP_TOKEN', secretRef: 'slack-app-token' }]
var httpSettings = [{ name: 'SLACK_SIGNING_SECRET', secretRef: 'slack-signing-secret' }]
var webhookSettings = empty(webhookSecret) ? [] : [{ name: 'PURVIEW_BOT_WEBHOOK_SECRET', secretRef: 'webhook-secret' }]
var databaseSettings = postgres ? [{ name: 'PURVIEW_BOT_DATABASE_URL', secretRef: 'database-url' }] : []
var alertSettings = empty(alertChannel) ? [] : [{ name: 'PURVIEW_BOT_ALERT_CHANNEL', value: alertChannel }]
var modeSettings = socketMode ? socketSettings : httpSettings
var settings = concat(baseSettings, modeSettings, webhookSettings, databaseSettings, alertSettings)

var systemIdentity = { type: 'SystemAssigned' }
var systemAndPullIdentity = {
  type: 'SystemAssigned,UserAssigned'
  userAssignedIdentities: { '${pullIdentity.id}': {} }
}
var ingressConfig = {
  external: true
  targetPort: port
  transport: 'http'
  allowInsecure: false
}
var acrRegistries = [
  {
    server: empty(acrName) ? '' : acr!.properties.loginServer
    identity: pullIdentity.id
  }
]

resource app 'Microsoft.App/containerApps@2024-03-01' = {
  name: name
  location: location
  identity: empty(acrName) ? systemIdentity : systemAndPullIdentity
  dependsOn: [acrPull, pgDatabase, pgAzure]
  properties: {
    managedEnvironmentId: env.id
    configuration: {
      activeRevisionsMode: 'Single'
      secrets: secrets
      ingress: ingress ? ingressConfig : null
      registries: empty(acrName) ? [] : acrRegistries
    }
    template: {
      containers: [
        {
          name: 'purview-bot'
          image: image
          // the image's default command: `purview-bot serve` (Socket Mode because SLACK_APP_TOKEN is set)
          env: settings
          resources: {
            cpu: json('0.5')
            memory: '1Gi'
          }
          probes: [
            // alive: the port answers (a Slack outage makes /healthz 503 and must not restart the bot)
            {
              type: 'Liveness'
              tcpSocket: { port: port }
              periodSeconds: 30
              failureThreshold: 3
            }
            // ready: Azure clients open and Slack accepted the token (503 until then; 200 "degraded"
            // while only the database is away)
            {
              type: 'Readiness'
              httpGet: {
                path: '/healthz'
                port: port
              }
              periodSeconds: 10
              timeoutSeconds: 5
              failureThreshold: 3
            }
          ]
        }
      ]
      scale: {
        // never zero: Socket Mode and the watcher need a running process (no HTTP request wakes them)
        minReplicas: replicasMin
        maxReplicas: replicasMax
      }
    }
  }
}

output principalId string = app.identity.principalId
output slackRequestUrl string = ingress && !socketMode ? 'https://${app.properties.configuration.ingress!.fqdn}/slack/events' : ''
