"""The MCP conformance suite's fixtures: `test_*` tools, resources and prompts.

Not shipped: scripts/conformance.py serves them with
`PYTHONPATH=scripts quantdesk serve --mcp-extension conformance_fixtures:ConformanceFixtures`.

These exist only so the official suite can exercise every protocol feature against the real
server and its real transports. They are MCP-only (sampling, elicitation, roots, multi-round
input), so they plug into the MCP binding as an extension, not into the tool registry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import mcp.types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError

IMAGE_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
AUDIO_B64 = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="
MODERN = "2026-07-28"
LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}

Ctx = ServerRequestContext[Any]
Handler = Callable[[Ctx, dict[str, Any], types.CallToolRequestParams],
                   Awaitable[types.CallToolResult | types.InputRequiredResult]]


def text(value: str, is_error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=value)], is_error=is_error)


def elicit_request(message: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"method": "elicitation/create",
            "params": {"message": message,
                       "requestedSchema": {"type": "object", "properties": properties, "required": required}}}


def sampling_request(prompt: str, max_tokens: int = 100) -> dict[str, Any]:
    return {"method": "sampling/createMessage",
            "params": {"messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
                       "maxTokens": max_tokens}}


ROOTS_REQUEST: dict[str, Any] = {"method": "roots/list"}


def _dump(value: Any) -> Any:
    return value.model_dump(mode="json", by_alias=True, exclude_none=True) if hasattr(value, "model_dump") else value


class StateSigner:
    """requestState round-trips through the client, so it is signed: a tampered state is refused."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def sign(self, state: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()
        mac = hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()
        return f"{body}.{mac}"

    def verify(self, token: str | None) -> dict[str, Any] | None:
        if token is None:
            return None
        body, _, mac = token.rpartition(".")
        expected = hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()
        if not body or not hmac.compare_digest(mac, expected):
            raise MCPError(code=-32602, message="requestState failed integrity verification")
        state: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body.encode()))
        return state


class ConformanceFixtures:
    """The extension object the MCP binding installs: extra tools, resources, prompts, completion, logging."""

    def __init__(self) -> None:
        self.signer = StateSigner()
        self.log_levels: dict[int, str] = {}
        self._handlers: dict[str, Handler] = {
            "test_simple_text": self._simple_text,
            "test_image_content": self._image,
            "test_audio_content": self._audio,
            "test_embedded_resource": self._embedded,
            "test_multiple_content_types": self._mixed,
            "test_tool_with_logging": self._logging,
            "test_logging_tool": self._logging,
            "test_streaming_elicitation": self._mrtr_elicitation,
            "test_tool_with_progress": self._progress,
            "test_error_handling": self._error,
            "test_sampling": self._sampling,
            "test_elicitation": self._elicitation,
            "test_elicitation_sep1034_defaults": self._elicitation_defaults,
            "test_elicitation_sep1330_enums": self._elicitation_enums,
            "test_reconnection": self._reconnection,
            "test_missing_capability": self._missing_capability,
            "json_schema_2020_12_tool": self._echo_arguments,
            "custom_header_tool": self._custom_header,
            "test_input_required_result_elicitation": self._mrtr_elicitation,
            "test_input_required_result_sampling": self._mrtr_sampling,
            "test_input_required_result_list_roots": self._mrtr_roots,
            "test_input_required_result_request_state": self._mrtr_request_state,
            "test_input_required_result_multiple_inputs": self._mrtr_multiple,
            "test_input_required_result_multi_round": self._mrtr_multi_round,
            "test_input_required_result_tampered_state": self._mrtr_tampered,
            "test_input_required_result_capabilities": self._mrtr_capabilities,
        }
        schemas: dict[str, dict[str, Any]] = {
            "test_sampling": {"type": "object", "properties": {"prompt": {"type": "string"}}, "required": ["prompt"]},
            "test_elicitation": {"type": "object", "properties": {"message": {"type": "string"}},
                                 "required": ["message"]},
            "json_schema_2020_12_tool": JSON_SCHEMA_2020_12,
            "custom_header_tool": {"type": "object", "required": ["header_value"],
                                   "properties": {"header_value": {"type": "string", "x-mcp-header": "Test-Value"}}},
        }
        self.tools = [types.Tool(name=name, description=f"Conformance fixture {name}",
                                 input_schema=schemas.get(name, EMPTY_SCHEMA)) for name in self._handlers]

    def input_schema(self, name: str) -> dict[str, Any] | None:
        return next((t.input_schema for t in self.tools if t.name == name), None)

    async def call_tool(self, ctx: Ctx, name: str, arguments: dict[str, Any],
                        params: types.CallToolRequestParams) -> types.CallToolResult | types.InputRequiredResult:
        return await self._handlers[name](ctx, arguments, params)

    def install(self, server: Server[Any]) -> None:
        server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, self._set_level)

    @property
    def resources(self) -> list[types.Resource]:
        return [types.Resource(uri=uri, name=name, description=description, mime_type=mime)
                for uri, name, description, mime in self.RESOURCES]

    @property
    def resource_templates(self) -> list[types.ResourceTemplate]:
        return [types.ResourceTemplate(uri_template="test://template/{id}/data", name="template",
                                       mime_type="application/json",
                                       description="A resource template with parameter substitution")]

    @property
    def prompts(self) -> list[types.Prompt]:
        return [types.Prompt(name=name, description=description,
                             arguments=[types.PromptArgument(name=a, required=True) for a in arguments])
                for name, description, arguments in self.PROMPTS]

    async def _simple_text(self, ctx: Ctx, args: dict[str, Any],
                           p: types.CallToolRequestParams) -> types.CallToolResult:
        return text("This is a simple text response for testing.")

    async def _image(self, ctx: Ctx, args: dict[str, Any], p: types.CallToolRequestParams) -> types.CallToolResult:
        return types.CallToolResult(content=[types.ImageContent(type="image", data=IMAGE_B64, mime_type="image/png")])

    async def _audio(self, ctx: Ctx, args: dict[str, Any], p: types.CallToolRequestParams) -> types.CallToolResult:
        return types.CallToolResult(content=[types.AudioContent(type="audio", data=AUDIO_B64, mime_type="audio/wav")])

    async def _embedded(self, ctx: Ctx, args: dict[str, Any], p: types.CallToolRequestParams) -> types.CallToolResult:
        resource = types.TextResourceContents(uri="test://embedded-resource", mime_type="text/plain",
                                              text="This is an embedded resource content.")
        return types.CallToolResult(content=[types.EmbeddedResource(type="resource", resource=resource)])

    async def _mixed(self, ctx: Ctx, args: dict[str, Any], p: types.CallToolRequestParams) -> types.CallToolResult:
        resource = types.TextResourceContents(uri="test://mixed-content-resource", mime_type="application/json",
                                              text='{"test":"data","value":123}')
        return types.CallToolResult(content=[
            types.TextContent(type="text", text="Multiple content types test:"),
            types.ImageContent(type="image", data=IMAGE_B64, mime_type="image/png"),
            types.EmbeddedResource(type="resource", resource=resource),
        ])

    async def _logging(self, ctx: Ctx, args: dict[str, Any], p: types.CallToolRequestParams) -> types.CallToolResult:
        threshold = self.log_levels.get(id(ctx.session), "debug")
        for i, message in enumerate(("Tool execution started", "Tool processing data", "Tool execution completed")):
            if i:
                await anyio.sleep(0.05)
            if LEVELS.index("info") >= LEVELS.index(threshold):
                await ctx.session.send_log_message("info", message, related_request_id=ctx.request_id)
        return text("Tool with logging executed successfully")

    async def _progress(self, ctx: Ctx, args: dict[str, Any], p: types.CallToolRequestParams) -> types.CallToolResult:
        for step in (0, 50, 100):
            await ctx.session.report_progress(step, 100, f"Completed step {step} of 100")
            if step != 100:
                await anyio.sleep(0.05)
        token = (ctx.meta or {}).get("progressToken")
        return text(str(token))

    async def _error(self, ctx: Ctx, args: dict[str, Any], p: types.CallToolRequestParams) -> types.CallToolResult:
        return text("This tool intentionally returns an error for testing", is_error=True)

    async def _reconnection(self, ctx: Ctx, args: dict[str, Any],
                            p: types.CallToolRequestParams) -> types.CallToolResult:
        if ctx.close_sse_stream is not None:
            await ctx.close_sse_stream()
        await anyio.sleep(0.2)
        return text("Reconnection test completed")

    async def _missing_capability(self, ctx: Ctx, args: dict[str, Any],
                                  p: types.CallToolRequestParams) -> types.CallToolResult:
        capabilities = ctx.session.client_capabilities
        if capabilities is None or capabilities.sampling is None:
            raise MCPError(code=-32021, message="Missing required client capability",
                           data={"requiredCapabilities": {"sampling": {}}})
        return text("sampling capability present")

    async def _echo_arguments(self, ctx: Ctx, args: dict[str, Any],
                              p: types.CallToolRequestParams) -> types.CallToolResult:
        return text(json.dumps(args, separators=(",", ":")))

    async def _custom_header(self, ctx: Ctx, args: dict[str, Any],
                             p: types.CallToolRequestParams) -> types.CallToolResult:
        return text(str(args.get("header_value", "")))

    # --- server-to-client requests (handshake era) or input-required results (2026-07-28) --------

    async def _sampling(self, ctx: Ctx, args: dict[str, Any],
                        p: types.CallToolRequestParams) -> types.CallToolResult | types.InputRequiredResult:
        if ctx.protocol_version == MODERN:
            return await self._mrtr_sampling(ctx, args, p)
        result = await ctx.session.create_message(
            [types.SamplingMessage(role="user", content=types.TextContent(type="text", text=str(args["prompt"])))],
            max_tokens=100, related_request_id=ctx.request_id)
        content = result.content
        reply = content.text if isinstance(content, types.TextContent) else "No response"
        return text(f"LLM response: {reply}")

    async def _elicit(self, ctx: Ctx, p: types.CallToolRequestParams, key: str, message: str,
                      schema: dict[str, Any]) -> types.CallToolResult | types.InputRequiredResult:
        if ctx.protocol_version == MODERN:
            response = _dump((p.input_responses or {}).get(key))
            if isinstance(response, dict) and "action" in response:
                content = json.dumps(response.get("content") or {}, separators=(",", ":"))
                return text(f"Elicitation completed: action={response['action']}, content={content}")
            return types.InputRequiredResult(input_requests={key: elicit_request(
                message, schema["properties"], schema.get("required", []))})
        result = await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
        content = json.dumps(result.content or {}, separators=(",", ":"))
        return text(f"User response: action={result.action}, content={content}")

    async def _elicitation(self, ctx: Ctx, args: dict[str, Any],
                           p: types.CallToolRequestParams) -> types.CallToolResult | types.InputRequiredResult:
        schema = {"type": "object", "required": ["username", "email"], "properties": {
            "username": {"type": "string", "description": "User's response"},
            "email": {"type": "string", "description": "User's email address"}}}
        return await self._elicit(ctx, p, "user_response", str(args["message"]), schema)

    async def _elicitation_defaults(self, ctx: Ctx, args: dict[str, Any],
                                    p: types.CallToolRequestParams) -> types.CallToolResult | types.InputRequiredResult:
        schema = {"type": "object", "properties": {
            "name": {"type": "string", "description": "User name", "default": "John Doe"},
            "age": {"type": "integer", "description": "User age", "default": 30},
            "score": {"type": "number", "description": "User score", "default": 95.5},
            "status": {"type": "string", "description": "User status", "enum": ["active", "inactive", "pending"],
                       "default": "active"},
            "verified": {"type": "boolean", "description": "Verification status", "default": True}}}
        return await self._elicit(ctx, p, "defaults", "Please review and update the form fields with defaults", schema)

    async def _elicitation_enums(self, ctx: Ctx, args: dict[str, Any],
                                 p: types.CallToolRequestParams) -> types.CallToolResult | types.InputRequiredResult:
        schema = {"type": "object", "properties": {
            "untitledSingle": {"type": "string", "description": "Simple enum without titles",
                               "enum": ["option1", "option2", "option3"]},
            "titledSingle": {"type": "string", "description": "Enum with titled options", "oneOf": [
                {"const": "value1", "title": "First Option"}, {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"}]},
            "legacyEnum": {"type": "string", "description": "Legacy enum with enumNames",
                           "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"]},
            "untitledMulti": {"type": "array", "description": "Multi-select without titles", "minItems": 1,
                              "maxItems": 3, "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
            "titledMulti": {"type": "array", "description": "Multi-select with titles", "minItems": 1, "maxItems": 3,
                            "items": {"anyOf": [{"const": "value1", "title": "First Choice"},
                                                {"const": "value2", "title": "Second Choice"},
                                                {"const": "value3", "title": "Third Choice"}]}}}}
        return await self._elicit(ctx, p, "enum_options", "Please select options from the enum fields", schema)

    # --- multi-round-trip input (SEP-2322) -----------------------------------------------------

    @staticmethod
    def _response(p: types.CallToolRequestParams | types.GetPromptRequestParams, key: str) -> dict[str, Any] | None:
        value = _dump((p.input_responses or {}).get(key))
        return value if isinstance(value, dict) else None

    @staticmethod
    def _content(response: dict[str, Any] | None) -> dict[str, Any]:
        content = (response or {}).get("content")
        return content if isinstance(content, dict) else {}

    def _required(self, requests: dict[str, dict[str, Any]],
                  state: dict[str, Any] | None = None) -> types.InputRequiredResult:
        return types.InputRequiredResult(input_requests=requests,
                                         request_state=self.signer.sign(state) if state is not None else None)

    async def _mrtr_elicitation(self, ctx: Ctx, args: dict[str, Any],
                                p: types.CallToolRequestParams) -> types.CallToolResult | types.InputRequiredResult:
        name = self._content(self._response(p, "user_name")).get("name")
        if isinstance(name, str):
            return text(f"Hello, {name}!")
        return self._required({"user_name": elicit_request("What is your name?", {"name": {"type": "string"}},
                                                           ["name"])})

    async def _mrtr_sampling(self, ctx: Ctx, args: dict[str, Any],
                             p: types.CallToolRequestParams) -> types.CallToolResult | types.InputRequiredResult:
        response = self._response(p, "sample_request")
        if response is not None:
            reply = self._content(response).get("text", "no response")
            return text(f"Sampling result: {reply}")
        return self._required({"sample_request": sampling_request("What is the capital of France?")})

    async def _mrtr_roots(self, ctx: Ctx, args: dict[str, Any],
                          p: types.CallToolRequestParams) -> types.CallToolResult | types.InputRequiredResult:
        response = self._response(p, "roots_request")
        if response is not None:
            roots = response.get("roots") or []
            return text(f"Found {len(roots)} root(s)")
        return self._required({"roots_request": ROOTS_REQUEST})

    async def _mrtr_request_state(self, ctx: Ctx, args: dict[str, Any],
                                  p: types.CallToolRequestParams) -> types.CallToolResult | types.InputRequiredResult:
        state = self.signer.verify(p.request_state)
        if state is not None and state.get("kind") == "request-state" and self._response(p, "confirm"):
            return text("state-ok: requestState validated")
        return self._required({"confirm": elicit_request("Please confirm", {"ok": {"type": "boolean"}}, ["ok"])},
                              {"kind": "request-state"})

    async def _mrtr_multiple(self, ctx: Ctx, args: dict[str, Any],
                             p: types.CallToolRequestParams) -> types.CallToolResult | types.InputRequiredResult:
        state = self.signer.verify(p.request_state)
        if state is not None and all(self._response(p, k) for k in ("user_name", "greeting", "client_roots")):
            return text("Multiple inputs completed")
        return self._required({
            "user_name": elicit_request("What is your name?", {"name": {"type": "string"}}, ["name"]),
            "greeting": sampling_request("Generate a greeting", 50),
            "client_roots": ROOTS_REQUEST,
        }, {"kind": "multiple-inputs"})

    async def _mrtr_multi_round(self, ctx: Ctx, args: dict[str, Any],
                                p: types.CallToolRequestParams) -> types.CallToolResult | types.InputRequiredResult:
        state = self.signer.verify(p.request_state) or {}
        if state.get("round") == 2 and self._response(p, "step2"):
            return text("Multi-round complete")
        if state.get("round") == 1 and self._response(p, "step1"):
            return self._required({"step2": elicit_request("Step 2: What is your favorite color?",
                                                           {"color": {"type": "string"}}, ["color"])}, {"round": 2})
        return self._required({"step1": elicit_request("Step 1: What is your name?", {"name": {"type": "string"}},
                                                       ["name"])}, {"round": 1})

    async def _mrtr_tampered(self, ctx: Ctx, args: dict[str, Any],
                             p: types.CallToolRequestParams) -> types.CallToolResult | types.InputRequiredResult:
        state = self.signer.verify(p.request_state)
        if state is not None and self._response(p, "confirm"):
            return text("integrity-ok: state verified")
        return self._required({"confirm": elicit_request("Please confirm", {"ok": {"type": "boolean"}}, ["ok"])},
                              {"kind": "tamper-test"})

    async def _mrtr_capabilities(self, ctx: Ctx, args: dict[str, Any],
                                 p: types.CallToolRequestParams) -> types.CallToolResult | types.InputRequiredResult:
        if p.input_responses:
            return text(f"capabilities-ok: received {','.join(p.input_responses)}")
        capabilities = ctx.session.client_capabilities
        requests: dict[str, dict[str, Any]] = {}
        if capabilities is not None and capabilities.elicitation is not None:
            requests["elicit_input"] = elicit_request("Elicitation input", {"value": {"type": "string"}}, ["value"])
        if capabilities is not None and capabilities.sampling is not None:
            requests["sample_input"] = sampling_request("Sample request", 50)
        if not requests:
            return text("No supported capabilities declared")
        return self._required(requests, {"kind": "capabilities-test"})

    # --- resources, prompts, completion, logging ------------------------------------------------

    RESOURCES: tuple[tuple[str, str, str, str], ...] = (
        ("test://static-text", "static-text", "A static text resource for testing", "text/plain"),
        ("test://static-binary", "static-binary", "A static binary resource for testing", "image/png"),
        ("test://watched-resource", "watched-resource", "A resource that can be subscribed to", "text/plain"),
    )

    async def read_resource(self, ctx: Ctx, uri: str) -> types.ReadResourceResult | None:
        contents: types.TextResourceContents | types.BlobResourceContents
        if uri == "test://static-text":
            contents = types.TextResourceContents(uri=uri, mime_type="text/plain",
                                                  text="This is the content of the static text resource.")
        elif uri == "test://static-binary":
            contents = types.BlobResourceContents(uri=uri, mime_type="image/png", blob=IMAGE_B64)
        elif uri == "test://watched-resource":
            contents = types.TextResourceContents(uri=uri, mime_type="text/plain", text="Watched resource content")
        elif uri.startswith("test://template/") and uri.endswith("/data"):
            item = uri.removeprefix("test://template/").removesuffix("/data")
            contents = types.TextResourceContents(uri=uri, mime_type="application/json", text=json.dumps(
                {"id": item, "templateTest": True, "data": f"Data for ID: {item}"}, separators=(",", ":")))
        else:
            return None
        return types.ReadResourceResult(contents=[contents])

    PROMPTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
        ("test_simple_prompt", "A simple prompt without arguments", ()),
        ("test_prompt_with_arguments", "A prompt with required arguments", ("arg1", "arg2")),
        ("test_prompt_with_embedded_resource", "A prompt that includes an embedded resource", ("resourceUri",)),
        ("test_prompt_with_image", "A prompt that includes image content", ()),
        ("test_input_required_result_prompt", "A prompt that requires elicitation input", ()),
    )

    async def get_prompt(self, ctx: Ctx, params: types.GetPromptRequestParams
                         ) -> types.GetPromptResult | types.InputRequiredResult | None:
        args = params.arguments or {}

        def user(content: Any) -> types.PromptMessage:
            return types.PromptMessage(role="user", content=content)

        if params.name == "test_simple_prompt":
            messages = [user(types.TextContent(type="text", text="This is a simple prompt for testing."))]
        elif params.name == "test_prompt_with_arguments":
            messages = [user(types.TextContent(
                type="text", text=f"Prompt with arguments: arg1='{args.get('arg1')}', arg2='{args.get('arg2')}'"))]
        elif params.name == "test_prompt_with_embedded_resource":
            resource = types.TextResourceContents(uri=args.get("resourceUri", "test://example-resource"),
                                                  mime_type="text/plain", text="Embedded resource content for testing.")
            messages = [user(types.EmbeddedResource(type="resource", resource=resource)),
                        user(types.TextContent(type="text", text="Please process the embedded resource above."))]
        elif params.name == "test_prompt_with_image":
            messages = [user(types.ImageContent(type="image", data=IMAGE_B64, mime_type="image/png")),
                        user(types.TextContent(type="text", text="Please analyze the image above."))]
        elif params.name == "test_input_required_result_prompt":
            context = self._content(self._response(params, "user_context")).get("context")
            if not isinstance(context, str):
                return self._required({"user_context": elicit_request(
                    "What context should the prompt use?", {"context": {"type": "string"}}, ["context"])})
            messages = [user(types.TextContent(type="text", text=f"Prompt with context: {context}"))]
        else:
            return None
        return types.GetPromptResult(messages=messages)

    async def _set_level(self, ctx: Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        self.log_levels[id(ctx.session)] = params.level
        return types.EmptyResult()


JSON_SCHEMA_2020_12: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {"address": {"$anchor": "addressDef", "type": "object",
                          "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}
