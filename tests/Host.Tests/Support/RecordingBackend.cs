using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Lb.Host.Tests.Support;

/// <summary>
/// A real backend on loopback that remembers every request it received (health checks included) and answers
/// as the test needs:
/// <list type="bullet">
/// <item>`/hold...` waits until <see cref="ReleaseHeld"/> (at most 30 s) before answering: a slow request whose
/// end the test decides, for connection limits and least-loaded balancing;</item>
/// <item>`/abort...` (or any request but a health check while <see cref="AbortTraffic"/> is set) drops the
/// connection without a response: a server that fails mid-request;</item>
/// <item>`/status/NNN` answers status NNN, and health checks get 503 while <see cref="FailChecks"/> is set;</item>
/// <item>`?cache-control=V` sends that Cache-Control;</item>
/// <item>anything else: the same JSON as <see cref="Lb.Host.Demo.EchoBackend"/>, read with <see cref="Echo.Parse"/>.</item>
/// </list>
/// It can be stopped and started again on the same port, keeping its log: a server that goes away and comes back.
/// </summary>
public sealed class RecordingBackend : IAsyncDisposable
{
    public sealed record Seen(DateTimeOffset At, string Method, string Target, string? Host, string? UserAgent, string? Cookie);

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };
    private static readonly TimeSpan LongestHold = TimeSpan.FromSeconds(30);

    private readonly ConcurrentQueue<Seen> _seen = new();
    private TaskCompletionSource _gate = NewGate();
    private WebApplication? _app;
    private int _held;

    private RecordingBackend(string name) => Name = name;

    public string Name { get; }
    public int Port { get; private set; }
    public string Address => $"127.0.0.1:{Port}";

    /// <summary>Every request received so far, in arrival order.</summary>
    public IReadOnlyList<Seen> Requests => _seen.ToArray();

    /// <summary>The requests that were health checks (User-Agent starting `lb-healthcheck/` or the given prefix).</summary>
    public IReadOnlyList<Seen> Checks(string userAgentPrefix = "lb-healthcheck/") =>
        Requests.Where(r => r.UserAgent?.StartsWith(userAgentPrefix, StringComparison.Ordinal) == true).ToArray();

    /// <summary>The requests that were not health checks.</summary>
    public IReadOnlyList<Seen> Traffic(string userAgentPrefix = "lb-healthcheck/") =>
        Requests.Where(r => r.UserAgent?.StartsWith(userAgentPrefix, StringComparison.Ordinal) != true).ToArray();

    /// <summary>`/hold` requests waiting now.</summary>
    public int Held => Volatile.Read(ref _held);

    public bool IsRunning => _app is not null;

    /// <summary>Answers health checks with 503 while set, and traffic as usual: a server its checks take down.</summary>
    public bool FailChecks { get; set; }

    /// <summary>Drops the connection of every request but health checks: a server that passes its checks but fails requests.</summary>
    public bool AbortTraffic { get; set; }

    public static async Task<RecordingBackend> StartAsync(string name, int port = 0)
    {
        var backend = new RecordingBackend(name);
        await backend.ListenAsync(port);
        return backend;
    }

    private async Task ListenAsync(int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, port));
        var app = builder.Build();
        app.Map("/{**any}", AnswerAsync);
        await app.StartAsync();
        Port = new Uri(app.Urls.First()).Port;
        _app = app;
    }

    /// <summary>Lets every waiting `/hold` request answer; later ones wait for the next release.</summary>
    public void ReleaseHeld() => Interlocked.Exchange(ref _gate, NewGate()).TrySetResult();

    /// <summary>Waits (bounded) until <paramref name="count"/> `/hold` requests are waiting.</summary>
    public async Task WaitForHeldAsync(int count, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (Held < count)
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{Name}: {Held} held requests, expected {count}");
            await Task.Delay(10);
        }
    }

    /// <summary>Stops listening, as a server that is shut down; the log is kept.</summary>
    public async Task StopAsync()
    {
        ReleaseHeld();
        if (Interlocked.Exchange(ref _app, null) is { } app)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    /// <summary>Listens again on the same port.</summary>
    public Task RestartAsync() => IsRunning ? Task.CompletedTask : ListenAsync(Port);

    private static TaskCompletionSource NewGate() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private async Task AnswerAsync(HttpContext context)
    {
        var request = context.Request;
        var target = context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()?.RawTarget ?? "";
        _seen.Enqueue(new Seen(DateTimeOffset.UtcNow, request.Method, target,
            request.Headers.Host.FirstOrDefault(), request.Headers.UserAgent.FirstOrDefault(), request.Headers.Cookie.FirstOrDefault()));

        var isCheck = request.Headers.UserAgent.ToString().StartsWith("lb-healthcheck/", StringComparison.Ordinal);
        if (request.Path.StartsWithSegments("/abort") || (AbortTraffic && !isCheck))
        {
            context.Abort();
            return;
        }
        if (request.Path.StartsWithSegments("/hold"))
        {
            Interlocked.Increment(ref _held);
            try
            {
                await Volatile.Read(ref _gate).Task.WaitAsync(LongestHold, context.RequestAborted);
            }
            catch (TimeoutException)
            {
            }
            finally
            {
                Interlocked.Decrement(ref _held);
            }
        }
        if (request.Path.StartsWithSegments("/status", out var rest) && int.TryParse(rest.Value?.Trim('/'), out var status))
            context.Response.StatusCode = status;
        if (isCheck && FailChecks)
            context.Response.StatusCode = 503;
        if (request.Query["cache-control"] is { Count: > 0 } cacheControl)
            context.Response.Headers.CacheControl = cacheControl.ToString();
        var echo = new Dictionary<string, object>
        {
            ["server"] = Name,
            ["method"] = request.Method,
            ["target"] = target,
            ["path"] = request.Path.Value ?? "",
            ["headers"] = request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString()),
        };
        await context.Response.WriteAsJsonAsync(echo, Json);
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}
