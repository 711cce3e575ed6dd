namespace Lb.Rules
