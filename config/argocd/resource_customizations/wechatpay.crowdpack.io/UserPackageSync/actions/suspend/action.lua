-- Set spec.suspend: true on the live object; nothing else changes. The
-- operator then stops checking the source and creates no child (a child
-- already syncing a revision finishes it) and reports Ready=False, reason
-- Suspended, even if it was Ready: Argo CD shows it Suspended until resumed.
if obj.spec == nil then
  obj.spec = {}
end
obj.spec.suspend = true
return obj
