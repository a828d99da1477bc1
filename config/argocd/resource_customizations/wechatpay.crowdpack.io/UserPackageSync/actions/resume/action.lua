-- Work on the object again (spec.suspend: false): the source is checked at once.
if obj.spec == nil then
  obj.spec = {}
end
obj.spec.suspend = false
return obj
