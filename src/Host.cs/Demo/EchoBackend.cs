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
        var echo = new Dictionary<string, object>
        {
            ["server"] = name,
            ["method"] = request.Method,
            ["target"] = target,
            ["path"] = request.Path.Value ?? "",
            ["self"] = self,
            ["headers"] = request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString()),
        };
        return context.Response.WriteAsJsonAsync(echo, EchoJson.Options);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

internal static class EchoJson
{
    public static readonly JsonSerializerOptions Options = new() { WriteIndented = true };
}
