-- Argo CD health of a crowdpack UserPackageUpload (wechatpay.crowdpack.io),
-- read from its kstatus conditions:
--   Healthy      Ready=True, for the current generation (the condition's and
--                status.observedGeneration both equal metadata.generation)
--   Suspended    spec.suspend is true and the object is not Healthy
--   Degraded     Stalled=True for the current generation: a human must change
--                the spec, a referenced Secret or the file (message says what)
--   Progressing  anything else: work under way, retrying a transient error,
--                or no status yet (message from Reconciling or Ready)
-- Uses only Lua's base library, as Argo CD's health VM provides.
local hs = {status = "Progressing", message = "Waiting for the operator to reconcile the object"}

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end

local function condition(type)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

-- current: the condition describes the current generation (a condition
-- without observedGeneration is taken as current).
local function current(c)
  return c.observedGeneration == nil or generation == nil or c.observedGeneration == generation
end

local ready = condition("Ready")
local stalled = condition("Stalled")
local reconciling = condition("Reconciling")
local observed = nil
if obj.status ~= nil then
  observed = obj.status.observedGeneration
end

if ready ~= nil and ready.status == "True" and ready.observedGeneration == generation and observed == generation then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  return hs
end

if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  if ready ~= nil and ready.reason == "Suspended" and ready.message ~= nil then
    hs.message = ready.message
  else
    hs.message = "Reconciliation is suspended (spec.suspend: true)"
  end
  return hs
end

if stalled ~= nil and stalled.status == "True" and current(stalled) then
  hs.status = "Degraded"
  hs.message = stalled.message or stalled.reason or "Stalled"
  return hs
end

if reconciling ~= nil and reconciling.status == "True" and current(reconciling) and reconciling.message ~= nil and reconciling.message ~= "" then
  hs.message = reconciling.message
elseif ready ~= nil and current(ready) and ready.message ~= nil and ready.message ~= "" then
  hs.message = ready.message
elseif generation ~= nil and (ready ~= nil or observed ~= nil) then
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
end
return hs
