"""On-call escalation: the Django app.

Calls go one way, down the layers:

    admin, views, commands, integrations  ->  services/  ->  engine/  ->  models/ and vonage/

Admin, views, commands and integrations call services; services call the engine; the engine calls models
and the Vonage client; the Vonage client calls nothing of ours (it imports neither Django nor the models,
and takes plain values: a config, channel type strings, addresses). A layer may use any layer below it (a
service reads the models, or the Vonage client's own words for a fault), never one above: tests/test_layers.py
reads every module's imports and fails if one does.
"""
