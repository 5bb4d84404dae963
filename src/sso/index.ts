/** SSO user-context decryption (Shared Secret). */
export { decryptUserContext, handleSsoRequest, userContextSchema, type UserContext, type SsoResponse } from './decrypt.js'
