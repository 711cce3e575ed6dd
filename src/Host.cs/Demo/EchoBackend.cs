using System.Net;
using System.Text.Json;

namespace Lb.Host.Demo;

/// <summary>
/// A built-in backend for the demo and the tests: answers every request with JSON describing what it saw
/// (server name, method, raw target, headers). `/redirect` answers with a Location pointing at itself, and
/// `/cookie` sets a cookie with `Path=/`, so lb's response rewrites can be seen.
/// </summary>
public sealed class EchoBackend : IAsyncDisposable
{
    private readonly WebApplication _app;

    private EchoBackend(WebApplication app, string name, int port)
    {
        _app = app;
        Name = name;
        Port = port;
    }

    public string Name { get; }
    public int Port { get; }
    public string Address => $"127.0.0.1:{Port}";

    /// <summary>Starts on 127.0.0.1 at the given port (0 picks a free one).</summary>
    public static async Task<EchoBackend> StartAsync(string name, int port = 0)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, port));
        var app = builder.Build();
        app.Map("/{**any}", (HttpContext context) => Answer(context, name));
        await app.StartAsync();
        var bound = new Uri(app.Urls.First()).Port;
        return new EchoBackend(app, name, bound);
    }

    private static Task Answer(HttpContext context, string name)
    {
        var request = context.Request;
        var target = context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()?.RawTarget ?? "";
        var self = $"http://{request.Host}";
        if (request.Path == "/redirect")
            context.Response.Headers.Location = $"http://{context.Connection.LocalIpAddress}:{context.Connection.LocalPort}/welcome";
        if (request.Path == "/redirect-relative")
            context.Response.Headers.Location = "/welcome";
        if (request.Path == "/cookie")
            context.Response.Headers.SetCookie = "a=b; Path=/";
        context.Response.StatusCode = request.Path.StartsWithSegments("/redirect") ? 302 : 200;
        context.Response.ContentType = "application/json; charset=utf-8";
        return context.Response.Body.WriteAsync(EchoJson.Describe(name, request.Method, target, request.Path.Value ?? "", self, request.Headers)).AsTask();
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>
/// The echo body, written with <see cref="Utf8JsonWriter"/> rather than the reflection serializer so that the
/// demo also works in a NativeAOT build.
/// </summary>
internal static class EchoJson
{
    private static readonly JsonWriterOptions Indented = new() { Indented = true };

    public static ReadOnlyMemory<byte> Describe(string server, string method, string target, string path, string self, IHeaderDictionary headers)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, Indented))
        {
            json.WriteStartObject();
            json.WriteString("server", server);
            json.WriteString("method", method);
            json.WriteString("target", target);
            json.WriteString("path", path);
            json.WriteString("self", self);
            json.WriteStartObject("headers");
            foreach (var header in headers)
                json.WriteString(header.Key, header.Value.ToString());
            json.WriteEndObject();
            json.WriteEndObject();
        }
        return buffer.WrittenMemory;
    }
}
