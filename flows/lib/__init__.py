"""The library under the stages: readers and schemas, metrics, featurisers, orchestration
helpers. Imports point one way: flows/<stage>.py -> flows.lib, models -> flows.lib.{errors,
schemas,config}; no module here imports a stage."""
