import { Type } from '@exchange/platform';

export const Role = Type.Union([Type.Literal('user'), Type.Literal('support'), Type.Literal('admin')]);
export const Scope = Type.Union([Type.Literal('read'), Type.Literal('trade'), Type.Literal('withdraw')]);
export const Email = Type.String({ format: 'email', minLength: 3, maxLength: 254 });
export const Password = Type.String({ minLength: 1, maxLength: 1024 });
export const TotpCode = Type.String({ pattern: '^[0-9]{6}$', description: '6-digit TOTP code' });
export const RecoveryCode = Type.String({ minLength: 8, maxLength: 32, description: 'One of the recovery codes' });

export const UserView = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email: Type.String(),
  roles: Type.Array(Role),
  mfaEnabled: Type.Boolean(),
  emailVerified: Type.Boolean({
    description: 'The owner confirmed the address by the emailed link; unverified accounts cannot withdraw',
  }),
  locked: Type.Boolean(),
  createdAt: Type.String({ format: 'date-time' }),
});

export const TokenPair = Type.Object({
  accessToken: Type.String(),
  refreshToken: Type.String(),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'Access token lifetime in seconds' }),
  sessionId: Type.String({ format: 'uuid' }),
});

export const AccessToken = Type.Object({
  accessToken: Type.String(),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer(),
  mfaAt: Type.Integer({ description: 'Epoch seconds of this 2FA check (token claim mfa_at)' }),
});

export const bearer = [{ bearer: [] }];
