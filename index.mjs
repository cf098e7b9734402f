import Corestore from './index.js'

export default Corestore
