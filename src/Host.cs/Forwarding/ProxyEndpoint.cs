using System.Net.Http;
using Lb.Rules;
using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Forwarder;

namespace Lb.Host.Forwarding;

/// <summary>
/// The one endpoint of lb. For each request:
///   1. translate the HttpContext into RequestFacts,
///   2. ask Rules for the Decision (redirect / reject / forward to an app),
///   3. for a forward, ask Rules for the persistence choice, then the balancer for a server if needed,
///   4. forward through YARP's IHttpForwarder (<see cref="PrefixTransformer"/> applies the rewrites),
///   5. on failure ask Rules' retry policy: same server, another server (redispatch, new cookie) or give up.
/// </summary>
public sealed class ProxyEndpoint(ForwardingState state, IHttpForwarder forwarder, ErrorPages errorPages)
{
    private readonly PrefixTransformer _transformer = new();

    public Task HandleAsync(HttpContext context)
    {
        var decision = Routing.Decide(state.Snapshot, Facts(context));
        return decision switch
        {
            Decision.Forward forward => ForwardAsync(context, forward.Item),
            Decision.Redirect redirect => RedirectAsync(context, redirect.status, redirect.location),
            Decision.Reject reject => errorPages.WriteAsync(context, reject.Item.Status, reject.Item.Text),
            _ => errorPages.WriteAsync(context, 500, "no decision"),
        };
    }

    private static RequestFacts Facts(HttpContext context)
    {
        var request = context.Request;
        var rawTarget = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? request.Path + request.QueryString;
        var forwardedFor = request.Headers["X-Forwarded-For"];
        return new RequestFacts(
            isHttps: request.IsHttps,
            host: request.Host.Value ?? "",
            method: request.Method,
            rawTarget: rawTarget,
            clientAddress: context.Connection.RemoteIpAddress?.ToString() ?? "",
            forwardedFor: forwardedFor.Count == 0 ? null : Microsoft.FSharp.Core.FSharpOption<string>.Some(forwardedFor.ToString()));
    }

    private static Task RedirectAsync(HttpContext context, int status, string location)
    {
        context.Response.StatusCode = status;
        context.Response.Headers.Location = location;
        return Task.CompletedTask;
    }

    private async Task ForwardAsync(HttpContext context, ForwardPlan plan)
    {
        var app = state.Apps[plan.AppIndex];
        var cookies = context.Request.Headers.Cookie.Where(c => c is not null).Select(c => c!).ToArray();
        var forward = new ForwardContext(plan, Persistence.BackendCookieHeaders(plan.App, cookies));
        var tried = new bool[app.Servers.Length];
        if (!ChooseFirstServer(app, forward, cookies))
        {
            await errorPages.WriteAsync(context, 503, $"no server of {plan.App.Name} is available");
            return;
        }
        if (!await state.GlobalSlots.WaitAsync(state.Config.Defaults.TimeoutQueue, context.RequestAborted))
        {
            await errorPages.WriteAsync(context, 503, "lb is at its connection limit (maxconn)");
            return;
        }
        try
        {
            await ForwardWithRetriesAsync(context, app, forward, tried);
        }
        finally
        {
            state.GlobalSlots.Release();
        }
    }

    /// <summary>The persistence cookie pins the client if it names a usable server; otherwise the balancer chooses.</summary>
    private static bool ChooseFirstServer(AppRuntime app, ForwardContext forward, string[] cookies)
    {
        switch (Persistence.Decide(app.Config, cookies, app.Usable()))
        {
            case PersistenceChoice.Pinned pinned:
                forward.ServerIndex = pinned.serverIndex;
                forward.InsertCookie = false;
                return true;
            default:
                forward.ServerIndex = app.Choose(app.Usable());
                forward.InsertCookie = Persistence.IsOn(app.Config);
                return forward.ServerIndex >= 0;
        }
    }

    private async Task ForwardWithRetriesAsync(HttpContext context, AppRuntime app, ForwardContext forward, bool[] tried)
    {
        var defaults = state.Config.Defaults;
        var hasBody = HasBody(context);
        for (var failures = 0; ; failures++)
        {
            var server = app.Servers[forward.ServerIndex];
            tried[forward.ServerIndex] = true;
            var error = await SendToAsync(context, server, forward, defaults.TimeoutQueue);
            if (error is null || context.Response.HasStarted || context.RequestAborted.IsCancellationRequested)
                return;
            var retry = Retry.Decide(failures + 1, defaults.Retries, defaults.Redispatch, context.Request.Method, hasBody, error);
            switch (retry)
            {
                case RetryDecision.GiveUp giveUp:
                    await errorPages.WriteAsync(context, giveUp.status, $"{app.Config.Name}/{server.Name}: {Describe(context)}");
                    return;
                case var other when other.IsRetryOtherServer:
                    var next = app.Choose(app.Usable(tried));
                    if (next >= 0)
                    {
                        forward.ServerIndex = next;
                        // A redispatched client gets a cookie for its new server (HAProxy `option redispatch`).
                        forward.InsertCookie = Persistence.IsOn(app.Config);
                    }
                    break;
            }
            ResetForRetry(context);
        }
    }

    /// <summary>One attempt; returns null on success, or the kind of failure.</summary>
    private async Task<FailureKind?> SendToAsync(HttpContext context, ServerRuntime server, ForwardContext forward, TimeSpan queueTimeout)
    {
        if (!await server.EnterAsync(queueTimeout, context.RequestAborted))
        {
            context.Response.StatusCode = 503;
            return FailureKind.ConnectFailed;
        }
        try
        {
            context.Items[PrefixTransformer.ContextKey] = forward;
            var error = await forwarder.SendAsync(context, $"http://{server.Config.Address}", state.Client, state.RequestConfig, _transformer);
            return Classify(error, context);
        }
        finally
        {
            server.Leave();
        }
    }

    private static FailureKind? Classify(ForwarderError error, HttpContext context) => error switch
    {
        ForwarderError.None => null,
        ForwarderError.RequestTimedOut => FailureKind.TimedOut,
        ForwarderError.Request when IsConnectFailure(context) => FailureKind.ConnectFailed,
        _ => FailureKind.RequestFailed,
    };

    private static bool IsConnectFailure(HttpContext context) =>
        context.Features.Get<IForwarderErrorFeature>()?.Exception is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError };

    private static string Describe(HttpContext context) =>
        context.Features.Get<IForwarderErrorFeature>() is { } e ? $"{e.Error}: {e.Exception?.Message}" : "no response";

    private static bool HasBody(HttpContext context) =>
        context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody ?? (context.Request.ContentLength > 0);

    /// <summary>Clears what YARP set on a failed attempt so the next one starts clean.</summary>
    private static void ResetForRetry(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Features.Set<IForwarderErrorFeature>(null);
    }
}
