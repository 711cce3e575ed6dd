using System.Diagnostics;
using System.Net.Http;
using Lb.Host.Caching;
using Lb.Host.Logging;
using Lb.Host.Stats;
using Lb.Rules;
using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Forwarder;

namespace Lb.Host.Forwarding;

/// <summary>
/// The one endpoint of lb. For each request:
///   1. translate the HttpContext into RequestFacts,
///   2. ask Rules for the Decision (redirect / reject / forward to an app),
///   3. for a forward, ask Rules' selection for the server (persistence cookie, then the app's algorithm),
///   4. forward through YARP's IHttpForwarder (<see cref="PrefixTransformer"/> applies the rewrites),
///   5. on failure ask Rules' retry policy (same server, another server or give up) and the selection for the other one,
///   6. count the outcome for the stats and hand an access log line to the background writer.
/// </summary>
public sealed class ProxyEndpoint(ForwardingState forwarding, IHttpForwarder forwarder, ErrorPages errorPages, AccessLogWriter accessLog, HttpCache cache)
{
    private readonly HttpTransformer _transformer = cache.Wrap(new PrefixTransformer());

    public async Task HandleAsync(HttpContext context)
    {
        var trace = RequestTrace.Start(context);
        var responseBody = new CountingStream(context.Response.Body);
        trace.ResponseBody = responseBody;
        context.Response.Body = responseBody;
        try
        {
            await DecideAsync(context);
        }
        finally
        {
            if (accessLog.Enabled)
                accessLog.Write(AccessLogEntryFor(context, trace));
        }
    }

    private static AccessLogEntry AccessLogEntryFor(HttpContext context, RequestTrace trace)
    {
        var request = context.Request;
        var target = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? request.Path + request.QueryString;
        return new AccessLogEntry(
            clientAddress: ClientAddress(context),
            forwardedFor: request.Headers["X-Forwarded-For"].ToString(),
            time: trace.Time,
            method: request.Method,
            target: target,
            protocol: request.Protocol,
            status: context.Response.StatusCode,
            bytesSent: trace.ResponseBody?.Count ?? 0,
            referer: request.Headers.Referer.ToString(),
            userAgent: request.Headers.UserAgent.ToString(),
            app: trace.App,
            server: trace.Server,
            queueMs: trace.QueueMs,
            connectMs: trace.ConnectMs,
            responseMs: trace.ResponseMs,
            totalMs: trace.TotalMs);
    }

    private Task DecideAsync(HttpContext context)
    {
        // One generation for the whole request: a reload meanwhile does not change its config halfway.
        var state = forwarding.Current;
        var decision = Routing.Decide(state.Snapshot, Facts(state, context));
        return decision switch
        {
            Decision.Forward forward when LimitBody(context, state, forward.Item) is { } tooLarge => RefuseBodyAsync(context, tooLarge),
            Decision.Forward forward => ForwardAsync(state, context, forward.Item),
            Decision.Redirect redirect => RedirectAsync(context, redirect.status, redirect.location),
            Decision.Reject reject => errorPages.WriteAsync(context, reject.Item.Status, reject.Item.Text),
            _ => errorPages.WriteAsync(context, 500, "no decision"),
        };
    }

    /// <summary>
    /// Applies the app's body limit (<see cref="RequestLimits.Body"/>) to the request before its body is read: Kestrel
    /// then cuts a chunked body past it with 413, and does not wait for a refused body to drain it. Returns the refusal
    /// when the declared length is already over it.
    /// </summary>
    private static BodyVerdict.TooLarge? LimitBody(HttpContext context, ForwardingGeneration state, ForwardPlan plan)
    {
        var verdict = RequestLimits.Body(state.Config.Defaults, plan.App, context.Request.ContentLength);
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature)
            feature.MaxRequestBodySize = verdict switch
            {
                BodyVerdict.Stream stream => stream.limit,
                BodyVerdict.TooLarge tooLarge => tooLarge.limit,
                _ => feature.MaxRequestBodySize,
            };
        return verdict as BodyVerdict.TooLarge;
    }

    /// <summary>RFC 9110 §15.5.14: 413, and the connection closes, as the unread body would follow on it.</summary>
    private Task RefuseBodyAsync(HttpContext context, BodyVerdict.TooLarge tooLarge)
    {
        context.Response.Headers.Connection = "close";
        return errorPages.WriteAsync(context, StatusCodes.Status413PayloadTooLarge, tooLarge.reason);
    }

    /// <summary>
    /// The client's address as Apache and HAProxy write it: an IPv4 client of a dual-stack `*:port` listener
    /// arrives as `::ffff:192.0.2.1` and is written `192.0.2.1` (X-Forwarded-For, logs, stats).
    /// </summary>
    public static string ClientAddress(HttpContext context) =>
        context.Connection.RemoteIpAddress is { } address
            ? (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).ToString()
            : "";

    private static RequestFacts Facts(ForwardingGeneration state, HttpContext context)
    {
        var request = context.Request;
        var rawTarget = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? request.Path + request.QueryString;
        var forwardedFor = request.Headers["X-Forwarded-For"];
        return new RequestFacts(
            isHttps: request.IsHttps,
            host: request.Host.Value ?? "",
            method: request.Method,
            rawTarget: rawTarget,
            clientAddress: ClientAddress(context),
            forwardedFor: forwardedFor.Count == 0 ? null : Microsoft.FSharp.Core.FSharpOption<string>.Some(forwardedFor.ToString()),
            headers: state.Snapshot.RulesReadHeaders ? HeaderLines(request.Headers) : []);
    }

    /// <summary>Every request header field line as (name, value), for rules that read headers or cookies.</summary>
    private static Tuple<string, string>[] HeaderLines(IHeaderDictionary headers)
    {
        var lines = new List<Tuple<string, string>>(headers.Count);
        foreach (var (name, values) in headers)
            foreach (var value in values)
                lines.Add(Tuple.Create(name, value ?? ""));
        return lines.ToArray();
    }

    private static Task RedirectAsync(HttpContext context, int status, string location)
    {
        context.Response.StatusCode = status;
        context.Response.Headers.Location = location;
        return Task.CompletedTask;
    }

    private async Task ForwardAsync(ForwardingGeneration state, HttpContext context, ForwardPlan plan)
    {
        var app = state.Apps[plan.AppIndex];
        var trace = RequestTrace.Of(context);
        if (trace is not null)
            trace.App = plan.App.Name;
        app.Counters.Request();
        // The cache sits after routing, before persistence and balancing: a hit touches no server.
        var cached = await cache.LookupAsync(context, plan);
        if (cached is { Answered: true })
        {
            app.Counters.Response(context.Response.StatusCode);
            return;
        }
        var cookies = PrefixTransformer.NonNull(context.Request.Headers.Cookie);
        var forward = new ForwardContext(plan, cookies.Length == 0 ? cookies : Persistence.BackendCookieHeaders(plan.App, cookies), app);
        if (!ChooseFirstServer(state, app, forward, cookies))
        {
            app.Counters.NoServerAvailable();
            await FailAsync(context, cached, 503, SelectionModule.RefusalText(plan.App, forward.Selection));
            app.Counters.Response(503);
            return;
        }
        // The first choice: a retry's selection replaces forward.Selection, but the client came pinned or not.
        var first = forward.Selection;
        var queued = Stopwatch.GetTimestamp();
        var slot = await state.GlobalSlots.WaitAsync(state.Config.Defaults.TimeoutQueue, context.RequestAborted);
        trace?.AddQueue(queued);
        if (!slot)
        {
            await FailAsync(context, cached, 503, "lb is at its connection limit (maxconn)");
            app.Counters.Response(503);
            return;
        }
        var requestBody = HasBody(context) ? new CountingStream(context.Request.Body) : null;
        if (requestBody is not null)
            context.Request.Body = requestBody;
        try
        {
            await ForwardWithRetriesAsync(state, context, app, forward, cached);
            if (cached is not null)
                await cache.CompleteAsync(context, cached);
        }
        finally
        {
            state.GlobalSlots.Release();
            Count(context, app, forward, first, requestBody, trace);
        }
    }

    /// <summary>The outcome on the stats of the server that answered last (and the app), and its pinned clients (<paramref name="first"/>: the first selection).</summary>
    private static void Count(HttpContext context, AppRuntime app, ForwardContext forward, Selection first, CountingStream? requestBody, RequestTrace? trace)
    {
        var server = app.Servers[forward.ServerIndex];
        var status = context.RequestAborted.IsCancellationRequested && !context.Response.HasStarted ? 0 : context.Response.StatusCode;
        server.Counters.Response(status);
        app.Counters.Response(status);
        server.Counters.AddBytes(requestBody?.Count ?? 0, trace?.ResponseBody?.Count ?? 0);
        if (trace is not null)
            trace.Server = server.Name;
        if (Lb.Rules.Stats.PinsClient(first, forward.InsertCookie, status))
        {
            var client = RecentClients.KeyOf(ClientAddress(context), context.Request.Headers.UserAgent.ToString());
            server.Counters.Pinned.Seen(client, DateTimeOffset.UtcNow);
        }
    }

    /// <summary>The first server, as <see cref="SelectionModule.First"/> says; false when the request is refused (503).</summary>
    private static bool ChooseFirstServer(ForwardingGeneration state, AppRuntime app, ForwardContext forward, string[] cookies)
    {
        var step = app.SelectFirst(forward.Plan.Pin, cookies, state.Config.Defaults.Redispatch);
        if (step.Selection.IsPinned)
            app.Servers[step.Selection.Server].Counters.PersistenceHit();
        return Apply(app, forward, step);
    }

    /// <summary>Carries out a selection on the request: its server, its cookie, and a broken pin counted as a redispatch.</summary>
    private static bool Apply(AppRuntime app, ForwardContext forward, SelectionStep step)
    {
        if (step.Selection.BrokenPin is var broken and >= 0)
            app.Servers[broken].Counters.Redispatch();
        forward.Selection = step.Selection;
        forward.InsertCookie = step.InsertCookie;
        if (step.Selection.Server < 0)
            return false;
        forward.ServerIndex = step.Selection.Server;
        return true;
    }

    /// <summary>lb's error page, or the stale cached response when its stale-if-error covers a missing response.</summary>
    private async Task FailAsync(HttpContext context, CacheExchange? cached, int status, string reason)
    {
        if (!await cache.AnswerInsteadOfErrorAsync(context, cached))
            await errorPages.WriteAsync(context, status, reason);
    }

    private async Task ForwardWithRetriesAsync(ForwardingGeneration state, HttpContext context, AppRuntime app, ForwardContext forward, CacheExchange? cached)
    {
        var defaults = state.Config.Defaults;
        var hasBody = HasBody(context);
        // Which servers this request went to; only needed (and allocated) once an attempt fails.
        bool[]? tried = null;
        for (var failures = 0; ; failures++)
        {
            var server = app.Servers[forward.ServerIndex];
            var (queueTimedOut, error) = await SendToAsync(state, context, server, forward, defaults.TimeoutQueue);
            // The server's `maxconn` queue timed out: 503 at once (HAProxy `timeout queue`), not a failure to retry.
            if (queueTimedOut)
            {
                await FailAsync(context, cached, 503, $"{app.Config.Name}/{server.Name} stayed full for timeout_queue");
                return;
            }
            if (error is null || context.Response.HasStarted || context.RequestAborted.IsCancellationRequested)
                return;
            if (ClientFault(context) is { } clientStatus)
            {
                // The client stalled, broke or overran its body: its fault, not the server's; never replayed. The rest
                // of the body would follow on the connection, so it closes.
                context.Response.Headers.Connection = "close";
                await errorPages.WriteAsync(context, clientStatus, clientStatus == StatusCodes.Status413PayloadTooLarge
                    ? $"the request body is larger than {app.Config.Name} accepts (max_request_body)"
                    : "the request body did not arrive in time (timeout_client)");
                return;
            }
            tried ??= new bool[app.Servers.Length];
            tried[forward.ServerIndex] = true;
            var retry = Retry.Decide(failures + 1, defaults.Retries, defaults.Redispatch, defaults.RetryOnTimeout, context.Request.Method, hasBody, error);
            switch (retry)
            {
                case RetryDecision.GiveUp giveUp:
                    await FailAsync(context, cached, giveUp.status, $"{app.Config.Name}/{server.Name}: {Describe(context)}");
                    return;
                case var other when other.IsRetryOtherServer:
                    Apply(app, forward, app.SelectRetry(forward.Plan.Pin, tried, forward.ServerIndex, forward.InsertCookie, defaults.Redispatch));
                    break;
            }
            ResetForRetry(context);
        }
    }

    /// <summary>One attempt: whether it never got a slot in the server's queue, else null on success or the kind of failure.</summary>
    private async Task<(bool QueueTimedOut, FailureKind? Failure)> SendToAsync(ForwardingGeneration state, HttpContext context, ServerRuntime server, ForwardContext forward, TimeSpan queueTimeout)
    {
        var queued = Stopwatch.GetTimestamp();
        var entered = await server.EnterAsync(queueTimeout, context.RequestAborted);
        RequestTrace.Of(context)?.AddQueue(queued);
        if (!entered)
            return (true, null);
        try
        {
            context.Features.Set(forward);
            var error = await forwarder.SendAsync(context, server.DestinationPrefix, state.Client, state.RequestConfig, _transformer);
            return (false, Classify(error, context));
        }
        finally
        {
            server.Leave();
        }
    }

    /// <summary>
    /// 408 when the client's body stalled past timeout_client, 413 when it passed the app's max_request_body (Kestrel's
    /// limit, <see cref="LimitBody"/>), 400 when it broke; null for server faults.
    /// </summary>
    private static int? ClientFault(HttpContext context) =>
        context.Features.Get<IForwarderErrorFeature>() is { Error: ForwarderError.RequestBodyClient } e
            ? (e.Exception as BadHttpRequestException ?? e.Exception?.InnerException as BadHttpRequestException)?.StatusCode is int status and (408 or 413) ? status : 400
            : null;

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
        context.Response.Headers.Clear();
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Features.Set<IForwarderErrorFeature>(null);
    }
}
