-- Ask the operator to check the source now (the annotation `flux reconcile`
-- sets); it echoes the value in status.lastHandledReconcileAt. On a sync
-- Stalled as SuspiciousShrink this also approves the revision held back:
-- it is synced as it is.
local os = require("os")
if obj.metadata == nil then
  obj.metadata = {}
end
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["reconcile.fluxcd.io/requestedAt"] = os.date("!%Y-%m-%dT%XZ")
return obj
