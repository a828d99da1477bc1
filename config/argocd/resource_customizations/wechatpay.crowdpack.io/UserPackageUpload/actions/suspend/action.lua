-- Set spec.suspend: true on the live object; nothing else changes. The
-- operator then stops reading the file and calling WeChat Pay for it (an
-- unfinished upload carries on where it stopped after resume) and reports
-- Reconciling=True and Ready=False, reason Suspended, even if it was Ready:
-- Argo CD shows it Suspended until resumed.
if obj.spec == nil then
  obj.spec = {}
end
obj.spec.suspend = true
return obj
