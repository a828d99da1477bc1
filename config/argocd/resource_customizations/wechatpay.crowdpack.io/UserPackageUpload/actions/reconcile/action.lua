-- Ask the operator to reconcile now: it re-reads the file and retries a
-- stalled object, and echoes the value in status.lastHandledReconcileAt
-- (the annotation `flux reconcile` sets).
local os = require("os")
if obj.metadata == nil then
  obj.metadata = {}
end
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["reconcile.fluxcd.io/requestedAt"] = os.date("!%Y-%m-%dT%XZ")
return obj
