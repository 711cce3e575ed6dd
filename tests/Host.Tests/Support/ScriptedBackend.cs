using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Lb.Host.Tests.Support;

/// <summary>
/// A real backend on loopback whose response headers the test dictates through the query:
/// `?location=V&amp;content-location=V&amp;cookie=V&amp;cookie=V&amp;delay=MS`. In a value, `{host}` becomes the Host header
/// the backend received and `{self}` its own `ip:port`, as an application building absolute URLs would.
/// </summary>
public sealed class ScriptedBackend : IAsyncDisposable
{
    private readonly WebApplication _app;

    private ScriptedBackend(WebApplication app, int port)
    {
        _app = app;
        Address = $"127.0.0.1:{port}";
    }

    public string Address { get; }

    public static async Task<ScriptedBackend> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        app.Map("/{**any}", AnswerAsync);
        await app.StartAsync();
        return new ScriptedBackend(app, new Uri(app.Urls.First()).Port);
    }

    private static async Task AnswerAsync(HttpContext context)
    {
        var query = context.Request.Query;
        var self = $"{context.Connection.LocalIpAddress}:{context.Connection.LocalPort}";
        string Fill(string value) => value.Replace("{host}", context.Request.Host.Value).Replace("{self}", self);

        if (int.TryParse(query["delay"], out var delay))
            await Task.Delay(Math.Min(delay, 30_000), context.RequestAborted);
        if (query["location"] is { Count: > 0 } location)
        {
            context.Response.StatusCode = 302;
            context.Response.Headers.Location = Fill(location.ToString());
        }
        if (query["content-location"] is { Count: > 0 } contentLocation)
            context.Response.Headers.ContentLocation = Fill(contentLocation.ToString());
        if (query["cookie"] is { Count: > 0 } cookies)
            context.Response.Headers.SetCookie = cookies.Select(c => Fill(c!)).ToArray();
        await context.Response.WriteAsync("scripted");
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
