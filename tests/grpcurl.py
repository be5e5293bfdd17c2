"""The part of grpcurl that docs/api.md uses, through the server's reflection as grpcurl works:
`-plaintext`, `-d JSON` (`@` reads stdin; several objects make a client stream), `-H 'name: value'`,
then ADDRESS and `list [SERVICE]`, `describe SYMBOL` or `SERVICE/METHOD`. Responses print as
grpcurl prints them (proto3 JSON, camelCase names, defaults left out); a failed call prints the
status on stderr and exits 64 + its code, as grpcurl does. The tests run the cookbook with it where
grpcurl itself is not installed."""

import json
import sys

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

_TIMEOUT = 30


def main(argv: list[str]) -> int:
    data, headers, rest = None, [], list(argv)
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag == "-d":
            data = rest.pop(0)
        elif flag == "-H":
            name, _, value = rest.pop(0).partition(":")
            headers.append((name.strip().lower(), value.strip()))
        elif flag != "-plaintext":
            print(f"grpcurl (tests): {flag} is not supported here", file=sys.stderr)
            return 2
    address, verb, *symbol = rest
    with grpc.insecure_channel(address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        pool = descriptor_pool.DescriptorPool(database)
        if verb == "list":
            return _list(database, pool, symbol)
        if verb == "describe":
            return _describe(pool, symbol[0])
        return _call(channel, pool, verb, sys.stdin.read() if data == "@" else data or "{}", headers)


def _list(database: ProtoReflectionDescriptorDatabase, pool: descriptor_pool.DescriptorPool,
          symbol: list[str]) -> int:
    if not symbol:
        print("\n".join(sorted(database.get_services())))
    else:
        service = pool.FindServiceByName(symbol[0])
        print("\n".join(f"{service.full_name}.{m.name}" for m in service.methods))
    return 0


def _describe(pool: descriptor_pool.DescriptorPool, symbol: str) -> int:
    try:
        message = pool.FindMessageTypeByName(symbol)
    except KeyError:
        service = pool.FindServiceByName(symbol)
        print(f"{service.full_name} is a service:")
        for m in service.methods:
            print(f"  rpc {m.name} ( {'stream ' if m.client_streaming else ''}.{m.input_type.full_name} ) returns "
                  f"( {'stream ' if m.server_streaming else ''}.{m.output_type.full_name} );")
        return 0
    print(f"{message.full_name} is a message:")
    for field in message.fields:
        kind = field.message_type or field.enum_type
        name = f".{kind.full_name}" if kind else _SCALARS.get(field.type, str(field.type))
        repeated = "repeated " if field.is_repeated else ""
        print(f"  {repeated}{name} {field.name} = {field.number};")
    return 0


_SCALARS = {1: "double", 3: "int64", 5: "int32", 8: "bool", 9: "string", 12: "bytes"}


def _call(channel: grpc.Channel, pool: descriptor_pool.DescriptorPool, target: str, data: str,
          headers: list[tuple[str, str]]) -> int:
    service_name, _, method_name = target.replace("/", ".").rpartition(".")
    method = pool.FindServiceByName(service_name).methods_by_name[method_name]
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    try:
        requests = [json_format.Parse(json.dumps(obj), request_class()) for obj in _objects(data)]
    except (ValueError, json_format.ParseError) as error:
        print(f"Error invoking method \"{target}\": error getting request data: {error}", file=sys.stderr)
        return 1
    path = f"/{service_name}/{method_name}"
    kind = ("stream_" if method.client_streaming else "unary_") + ("stream" if method.server_streaming else "unary")
    invoke = getattr(channel, kind)(path, request_serializer=lambda m: m.SerializeToString(),
                                    response_deserializer=response_class.FromString)
    try:
        sent = iter(requests) if method.client_streaming else requests[0]
        answer = invoke(sent, metadata=headers, timeout=_TIMEOUT)
        for response in answer if method.server_streaming else [answer]:
            print(json_format.MessageToJson(response, indent=2, ensure_ascii=False))  # as grpcurl prints "×"
    except grpc.RpcError as error:
        print(f"ERROR:\n  Code: {error.code().name.title().replace('_', '')}\n  Message: {error.details()}",
              file=sys.stderr)
        return 64 + error.code().value[0]
    return 0


def _objects(data: str) -> list[dict]:
    """grpcurl reads a stream of JSON objects from -d: one request each."""
    decoder, objects, at = json.JSONDecoder(), [], 0
    while at < len(data):
        if data[at].isspace():
            at += 1
            continue
        obj, at = decoder.raw_decode(data, at)
        objects.append(obj)
    return objects


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
