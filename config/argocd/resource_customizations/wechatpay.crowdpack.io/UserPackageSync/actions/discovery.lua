-- Argo CD actions of a UserPackageSync: reconcile (now, the Flux way),
-- suspend and resume. Only the one of suspend/resume that applies is enabled.
local actions = {}
actions["reconcile"] = {["disabled"] = false}
local suspended = obj.spec ~= nil and obj.spec.suspend == true
actions["suspend"] = {["disabled"] = suspended}
actions["resume"] = {["disabled"] = not suspended}
return actions
