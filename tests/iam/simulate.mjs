// Judges IAM requests with @cloud-copilot/iam-simulate, for tests/test_iam_policies.py.
//
// stdin:  {"principals": {name: {"arn", "policies": [{"name", "policy"}]}},
//          "resourcePolicies": {resourceArn: {"name", "policy"}},
//          "requests": [{"principal", "action", "resource", "context"}]}
// stdout: [{"decision", "errors", "allowedBy": ["policy/Sid"], "nearMisses": ["policy/Sid"]}],
//         in order; a near miss matched the action and resource but not its condition
//
// Each request is simulated twice. runSimulation validates the action and the resource ARN
// against AWS's service data and explains which statements allowed it; but it drops
// condition keys with a ":" variable part such as kms:EncryptionContext:user_id (0.1.173
// matches variable keys on "/" only), so the decision comes from runUnsafeSimulation, which
// evaluates the context exactly as given.
import { runSimulation, runUnsafeSimulation } from '@cloud-copilot/iam-simulate'

const ACCOUNT = '123456789012'

const input = JSON.parse(await new Promise((resolve) => {
  let text = ''
  process.stdin.on('data', (chunk) => { text += chunk })
  process.stdin.on('end', () => resolve(text))
}))

const results = []
for (const request of input.requests) {
  const principal = input.principals[request.principal]
  const resourcePolicy = input.resourcePolicies[request.resource]
  const simulation = {
    identityPolicies: principal.policies,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: resourcePolicy?.policy,
    request: {
      action: request.action,
      principal: principal.arn,
      resource: { resource: request.resource, accountId: ACCOUNT },
      contextVariables: request.context,
    },
  }
  const checked = await runSimulation(simulation, {})
  const errors = checked.resultType === 'error' ? [JSON.stringify(checked.errors)] : []
  const analysis = checked.resultType === 'single' ? checked.result.analysis : undefined
  const name = (s) => `${s.policyId}/${s.statement.sid() ?? `statement ${s.statement.index()}`}`
  const allowedBy = (analysis?.identityAnalysis?.allowStatements ?? []).map(name)
  const nearMisses = (analysis?.identityAnalysis?.unmatchedStatements ?? [])
    .filter((s) => s.actionMatch && s.resourceMatch)
    .map(name)
  // A ValidatedPolicy, so the resource policy keeps its name (runUnsafeSimulation would
  // read the name of an unnamed one and fail).
  const namedResourcePolicy = resourcePolicy
    ? { __validated: true, policyDocument: resourcePolicy.policy,
        metadata: { name: resourcePolicy.name }, errors: [] }
    : undefined
  const decision = runUnsafeSimulation(
    { ...simulation, resourcePolicy: namedResourcePolicy },
    {},
  )
  if (decision === 'Allowed' && allowedBy.length === 0) {
    // Decided on the context runSimulation dropped: find the statements that allow it.
    for (const entry of principal.policies) {
      entry.policy.Statement.forEach((statement, index) => {
        const alone = runUnsafeSimulation(
          {
            ...simulation,
            identityPolicies: [{ name: entry.name, policy: { ...entry.policy, Statement: [statement] } }],
            resourcePolicy: namedResourcePolicy,
          },
          {},
        )
        if (alone === 'Allowed') allowedBy.push(`${entry.name}/${statement.Sid ?? `statement ${index}`}`)
      })
    }
  }
  results.push({
    decision,
    errors,
    allowedBy,
    nearMisses,
  })
}
process.stdout.write(JSON.stringify(results))
