-- Stop working on the object (spec.suspend: true); a Ready object stays Ready.
if obj.spec == nil then
  obj.spec = {}
end
obj.spec.suspend = true
return obj
