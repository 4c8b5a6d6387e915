"""The rehearsal deploys a copy of the packaged template with the emulator's adjustments, and only those."""

from __future__ import annotations

import copy
from typing import Any

from infra.rehearse import adapt_template


def packaged() -> dict[str, Any]:
    """The parts of `make package`'s template that the adjustments touch."""
    function = {"Type": "AWS::Serverless::Function", "Properties": {
        "CodeUri": "./deployment.zip", "Handler": "app.app",
        "Environment": {"Variables": {"EMS_STAGE": "dev", "EMS_WEBSOCKET_API_ID": {"Ref": "WebsocketAPI"}}}}}
    return {"Transform": "AWS::Serverless-2016-10-31", "Resources": {
        "APIHandler": function,
        "IngestReadings": copy.deepcopy(function),
        "WebsocketAPI": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"ProtocolType": "WEBSOCKET"}},
        "WebsocketAPIDeployment": {"Type": "AWS::ApiGatewayV2::Deployment",
                                   "Properties": {"ApiId": {"Ref": "WebsocketAPI"}}},
        "WebsocketAPIStage": {"Type": "AWS::ApiGatewayV2::Stage", "Properties": {
            "ApiId": {"Ref": "WebsocketAPI"}, "DeploymentId": {"Ref": "WebsocketAPIDeployment"},
            "StageName": "api"}},
        "ReadingsQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "ems-dev-readings"}},
    }}


def test_the_copy_has_the_adjustments_and_the_packaged_template_is_unchanged() -> None:
    template = packaged()
    before = copy.deepcopy(template)
    adapted = adapt_template(template, code_uri="s3://bucket/code.zip", endpoint_url="http://127.0.0.1:4599")
    assert template == before
    resources = adapted["Resources"]
    assert "WebsocketAPIDeployment" not in resources
    assert resources["WebsocketAPIStage"]["Properties"] == {
        "ApiId": {"Ref": "WebsocketAPI"}, "StageName": "api", "AutoDeploy": True}
    for name in ("APIHandler", "IngestReadings"):
        properties = resources[name]["Properties"]
        assert properties["CodeUri"] == "s3://bucket/code.zip"
        assert properties["Environment"]["Variables"] == {
            "EMS_STAGE": "dev", "EMS_WEBSOCKET_API_ID": {"Ref": "WebsocketAPI"},
            "EMS_WEBSOCKET_MANAGEMENT_URL": {"Fn::Sub": "http://127.0.0.1:4599/_aws/execute-api/${WebsocketAPI}/api"}}
    # Nothing else changes: the packaged template less the adjusted parts is the copy less them.
    for name in ("APIHandler", "IngestReadings", "WebsocketAPIStage", "WebsocketAPIDeployment"):
        before["Resources"].pop(name)
        resources.pop(name, None)
    assert adapted == before
