using Lb.Rules;
using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Forwarder;

namespace Lb.Host.Forwarding;

/// <summary>
/// The one endpoint of lb. For each request:
///   1. translate the HttpContext into RequestFacts,
///   2. ask Rules for the Decision,
///   3. carry it out: write a redirect or an error page, or forward through YARP's IHttpForwarder with
///      <see cref="PrefixTransformer"/> applying the rewrites Rules decided.
/// </summary>
public sealed class ProxyEndpoint(ForwardingState state, IHttpForwarder forwarder)
{
    private readonly PrefixTransformer _transformer = new();

    public Task HandleAsync(HttpContext context)
    {
        var decision = Routing.Decide(state.Snapshot, Facts(context));
        return decision switch
        {
            Decision.Forward forward => ForwardAsync(context, forward.Item),
            Decision.Redirect redirect => RedirectAsync(context, redirect.status, redirect.location),
            Decision.Reject reject => ErrorPages.WriteAsync(context, reject.Item.Status, reject.Item.Text),
            _ => ErrorPages.WriteAsync(context, 500, "no decision"),
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
        var server = state.NextServer(plan);
        context.Items[PrefixTransformer.PlanKey] = plan;
        var error = await forwarder.SendAsync(context, $"http://{server.Address}", state.Client, state.RequestConfig, _transformer);
        if (error != ForwarderError.None && !context.Response.HasStarted)
            await ErrorPages.WriteAsync(context, context.Response.StatusCode >= 500 ? context.Response.StatusCode : 502, $"backend {server.Name}: {error}");
    }
}
