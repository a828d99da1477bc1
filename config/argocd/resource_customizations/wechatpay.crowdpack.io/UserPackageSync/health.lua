-- Argo CD health of a crowdpack UserPackageSync (wechatpay.crowdpack.io),
-- read from its kstatus conditions, in this order (the same script, rule for
-- rule, as the UserPackageUpload one):
--   Suspended    spec.suspend is true, whatever the status says (as Argo CD's
--                Flux health checks do): the operator does not check the source
--                and creates no child
--   Healthy      Ready=True for the current generation: status.observedGeneration
--                equals metadata.generation, and so does Ready's own
--                observedGeneration when it has one
--   Degraded     Stalled=True for the current generation: a human must look
--                (message says what), e.g. a revision held back as a suspicious
--                shrink (the reconcile action approves it), a child that failed,
--                or the last synced revision (the delta's base) gone
--   Progressing  anything else: a revision being synced by a child, retrying a
--                transient error, a generation not observed yet, or no status
--                yet (message from Reconciling or Ready)
-- Uses only Lua's base library, as Argo CD's health VM provides.
local hs = {status = "Progressing", message = "Waiting for the operator to reconcile the object"}

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local observed = nil
if obj.status ~= nil then
  observed = obj.status.observedGeneration
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

-- current: the condition describes metadata.generation. Its own
-- observedGeneration says so; without one, status.observedGeneration does
-- (as kstatus reads conditions).
local function current(c)
  if c.observedGeneration ~= nil then
    return c.observedGeneration == generation
  end
  return observed == generation
end

-- says_suspended: the condition is the operator's word that it is suspended.
local function says_suspended(c)
  return c ~= nil and c.reason == "Suspended" and c.message ~= nil and c.message ~= ""
end

local ready = condition("Ready")
local stalled = condition("Stalled")
local reconciling = condition("Reconciling")

if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  if says_suspended(ready) then
    hs.message = ready.message
  elseif says_suspended(reconciling) then
    hs.message = reconciling.message
  else
    hs.message = "Reconciliation is suspended (spec.suspend: true)"
  end
  return hs
end

-- status.observedGeneration behind metadata.generation means the operator
-- has not looked at the current spec yet, whatever Ready says (kstatus).
if ready ~= nil and ready.status == "True" and observed == generation and current(ready) then
  hs.status = "Healthy"
  hs.message = ready.message or ""
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
